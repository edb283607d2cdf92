"""Commands through Flask's CLI runner."""

import json

from sqlalchemy import func, select

from extensions import db
from models import Bureau, Client, Person, PersonKind, User, UserStatus


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_seed_demo_creates_everything_once(runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "ingrid@nordlys.example / demo-passord-2026" in result.output
    totals = (count(Bureau), count(Client), count(Person), count(User))
    assert totals[0] == 2
    assert 38 <= totals[1] <= 42
    assert {k for (k,) in db.session.execute(select(Person.kind).distinct())} == set(PersonKind)
    assert {s for (s,) in db.session.execute(select(User.status).distinct())} == set(UserStatus)
    assert count(Client, Client.is_demo.is_(True)) > 0
    assert count(Client, Client.is_internal.is_(True)) == 2

    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0
    assert (count(Bureau), count(Client), count(Person), count(User)) == totals

    skipped = runner.invoke(args=["seed-demo", "--if-empty"])
    assert "skipped" in skipped.output


def test_bureaus_and_packages_list_json(runner):
    runner.invoke(args=["seed-demo"])
    bureaus = json.loads(runner.invoke(args=["bureaus", "list"]).output)
    assert {"org_number": "923456783", "name": "Nordlys Regnskap AS"} in bureaus
    assert all(set(b) == {"org_number", "name"} for b in bureaus)
    result = runner.invoke(args=["packages", "list", "--bureau", "923456783"])
    assert result.exit_code == 0, result.output
    packages = json.loads(result.output)
    assert {"code": "CRM", "name": "CRM", "kind": "main", "rank": 1, "price": "149.00"} in packages
    assert {p["kind"] for p in packages} == {"main", "addon"}
    assert all(p["rank"] is None for p in packages if p["kind"] == "addon")


def test_unknown_bureau_is_a_usage_error(runner):
    runner.invoke(args=["seed-demo"])
    result = runner.invoke(args=["packages", "list", "--bureau", "999999999"])
    assert result.exit_code == 2
    assert "no bureau has org number" in result.output


def test_demo_staff_can_log_in_and_open_the_four_grids(runner, client):
    runner.invoke(args=["seed-demo"])
    response = client.post("/login", data={"email": "ingrid@nordlys.example", "password": "demo-passord-2026"})
    assert response.status_code == 302
    for grid in ("clients", "persons", "users", "packages"):
        assert client.get(f"/admin/{grid}/").status_code == 200
    text = client.get("/admin/clients/?page_size=200").get_data(as_text=True)
    assert "Nordlys Regnskap AS" in text
    assert "Fjordtall Økonomi AS" not in text  # the other bureau's internal client
