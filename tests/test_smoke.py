from models import StaffRole


def test_login_and_grids(client, bureau, make_staff, login, make_client):
    make_client(name="Synlig Kunde AS")
    user = make_staff(bureau, StaffRole.ADMIN)
    login(user)
    for url in [
        "/admin/",
        "/admin/clients/",
        "/admin/persons/",
        "/admin/users/",
        "/admin/packages/",
        "/admin/assignments/",
        "/admin/permissions/",
        "/admin/templates/",
        "/admin/auditlog/",
        "/admin/clients/new/",
        "/admin/packages/new/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.get_data(as_text=True)[-3000:])
    assert "Synlig Kunde AS" in client.get("/admin/clients/").get_data(as_text=True)
