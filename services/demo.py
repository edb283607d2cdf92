"""The demo data set: two bureaus with staff, templates, a package catalogue, clients and people."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Bureau,
    Client,
    ConsentStatus,
    CustomerTemplate,
    Package,
    PackageAssignment,
    PackageKind,
    Permission,
    Person,
    PersonKind,
    ResellerRole,
    StaffRole,
    User,
    UserStatus,
)
from services.orgnumbers import valid_numbers

DEMO_PASSWORD = "demo-passord-2026"


@dataclass(frozen=True)
class StaffLogin:
    bureau: str
    email: str
    password: str
    role: str


BUREAUS = [
    # org number, name, e-mail domain, staff (first, last, role)
    (
        "923456783",
        "Nordlys Regnskap AS",
        "nordlys.example",
        [("Ingrid", "Berg", StaffRole.ADMIN), ("Ola", "Nordmann", StaffRole.STAFF), ("Kari", "Lie", StaffRole.STAFF)],
    ),
    (
        "812345028",
        "Fjordtall Økonomi AS",
        "fjordtall.example",
        [("Per", "Hansen", StaffRole.ADMIN), ("Siri", "Dahl", StaffRole.STAFF)],
    ),
]

PERMISSIONS = [
    ("CRM_READ", "CRM: lese"),
    ("CRM_WRITE", "CRM: skrive"),
    ("PROJECT", "Prosjektstyring"),
    ("ACCOUNTING", "Regnskap"),
    ("INVOICE", "Fakturering"),
    ("PAYROLL", "Lønn"),
    ("BANK", "Bank"),
    ("REPORTS", "Rapporter"),
]

# code, name, kind, rank, price, requires_main, permission codes
PACKAGES = [
    ("CRM", "CRM", PackageKind.MAIN, 1, "149.00", False, ["CRM_READ", "CRM_WRITE"]),
    ("PROSJEKT", "Prosjektstyring", PackageKind.MAIN, 2, "299.00", False, ["CRM_READ", "CRM_WRITE", "PROJECT"]),
    (
        "REGNSKAP",
        "Regnskap",
        PackageKind.MAIN,
        3,
        "449.00",
        False,
        ["CRM_READ", "CRM_WRITE", "PROJECT", "ACCOUNTING", "REPORTS"],
    ),
    ("FAKTURA", "Fakturering", PackageKind.ADDON, None, "99.00", False, ["INVOICE"]),
    ("LONN", "Lønn", PackageKind.ADDON, None, "79.00", True, ["PAYROLL"]),
    ("BANK", "Bank", PackageKind.ADDON, None, "49.00", True, ["BANK"]),
]

COMPANY_WORDS = [
    "Bakeri",
    "Bygg",
    "Elektro",
    "Fiskeoppdrett",
    "Frisør",
    "Gartneri",
    "Helse",
    "IT-Konsult",
    "Maskin",
    "Transport",
    "Rør",
    "Reklame",
    "Snekkeri",
    "Tannlege",
    "Tekstil",
    "Trafikkskole",
    "Verksted",
    "Vinduspuss",
    "Arkitekt",
    "Kafé",
]
PLACES = [("Tromsø", "9008"), ("Bodø", "8006"), ("Bergen", "5003"), ("Oslo", "0150"), ("Ålesund", "6002")]
FIRST_NAMES = [
    "Anne",
    "Bjørn",
    "Camilla",
    "Daniel",
    "Eva",
    "Fredrik",
    "Guro",
    "Håkon",
    "Ida",
    "Jonas",
    "Linn",
    "Magnus",
]
LAST_NAMES = ["Andersen", "Bakke", "Eide", "Haugen", "Johansen", "Kristiansen", "Moen", "Solberg", "Strand", "Aas"]


def seed_demo(session: Session) -> list[StaffLogin]:
    """Create the demo data unless its bureaus exist already; returns the staff logins either way."""
    logins: list[StaffLogin] = []
    rng = random.Random(2026)
    client_numbers = valid_numbers(91_000_000)
    for index, (org_number, name, domain, staff) in enumerate(BUREAUS):
        exists = session.scalar(select(Bureau).where(Bureau.org_number == org_number))
        if exists is None:
            _seed_bureau(session, rng, client_numbers, org_number, name, domain, staff, index)
        logins.extend(
            StaffLogin(name, _staff_email(first, domain), DEMO_PASSWORD, role.value) for first, _, role in staff
        )
    session.flush()
    return logins


def ascii_name(name: str) -> str:
    return name.lower().translate(str.maketrans({"æ": "ae", "ø": "o", "å": "a", "é": "e"}))


def _staff_email(first: str, domain: str) -> str:
    return f"{first.lower()}@{domain}"


def _seed_bureau(session, rng, client_numbers, org_number, name, domain, staff, index) -> None:
    bureau = Bureau(org_number=org_number, name=name)
    session.add(bureau)
    session.flush()
    bid = bureau.id

    permissions = {code: Permission(bureau_id=bid, code=code, name=label) for code, label in PERMISSIONS}
    session.add_all(permissions.values())
    packages: dict[str, Package] = {}
    for code, pname, kind, rank, price, requires_main, perms in PACKAGES:
        packages[code] = Package(
            bureau_id=bid,
            code=code,
            name=pname,
            kind=kind,
            rank=rank,
            price=Decimal(price),
            requires_main=requires_main,
            permissions=[permissions[p] for p in perms],
        )
    session.add_all(packages.values())
    norwegian = CustomerTemplate(
        bureau_id=bid,
        name="Norsk standard",
        country_code="NO",
        language="nb",
        currency="NOK",
        packages=[packages["CRM"], packages["FAKTURA"]],
    )
    swedish = CustomerTemplate(
        bureau_id=bid,
        name="Svensk kundemal",
        country_code="SE",
        language="sv",
        currency="SEK",
        packages=[packages["CRM"]],
    )
    session.add_all([norwegian, swedish])

    internal = Client(
        bureau_id=bid,
        name=name,
        org_number=org_number,
        organisation_form="AS",
        is_internal=True,
        template=norwegian,
        business_city=PLACES[index][0],
        business_postal_code=PLACES[index][1],
        business_country_code="NO",
    )
    session.add(internal)
    session.flush()
    employees: list[User] = []
    for first, last, role in staff:
        person = Person(
            bureau_id=bid,
            client=internal,
            kind=PersonKind.USER,
            first_name=first,
            last_name=last,
            email=_staff_email(first, domain),
        )
        user = User(bureau_id=bid, person=person, status=UserStatus.ACTIVE, staff_role=role)
        user.set_password(DEMO_PASSWORD)
        session.add_all([person, user])
        employees.append(user)
    session.flush()
    for user in employees:
        session.add(
            PackageAssignment(bureau_id=bid, user=user, package=packages["REGNSKAP"], valid_from=date(2025, 1, 1))
        )

    today = date.today()
    first_of_month = today.replace(day=1)
    for n in range(19):
        word = COMPANY_WORDS[(n + index * 7) % len(COMPANY_WORDS)]
        city, postcode = PLACES[(n + index) % len(PLACES)]
        is_demo = n % 6 == 5
        template = swedish if n % 7 == 3 else norwegian
        client = Client(
            bureau_id=bid,
            name=f"{city} {word} {'AB' if template is swedish else 'AS'}",
            org_number=None if n == 18 else next(client_numbers),
            organisation_form="AS",
            is_demo=is_demo,
            template=template,
            business_address_lines=f"Storgata {n + 1}",
            business_postal_code=postcode,
            business_city=city,
            business_country_code="NO",
            postal_address_lines=f"Postboks {100 + n}",
            postal_postal_code=postcode,
            postal_city=city,
            postal_country_code="NO",
            email=f"post@{word.lower().replace('é', 'e')}{n}.example",
            company_lookup_enabled=n % 3 == 0,
            custom_invoice_email_enabled=n % 4 == 0,
            consent_status=[ConsentStatus.PENDING, ConsentStatus.GIVEN, ConsentStatus.DECLINED][n % 3],
        )
        session.add(client)
        session.flush()

        def person(kind: PersonKind, with_email: bool = True, client: Client = client) -> Person:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            p = Person(
                bureau_id=bid,
                client=client,
                kind=kind,
                first_name=first,
                last_name=last,
                email=f"{ascii_name(first)}.{ascii_name(last)}.{client.id}.{rng.randrange(10**6)}@kunde.example"
                if with_email
                else None,
                phone=f"+47 9{rng.randrange(10**7):07d}",
            )
            session.add(p)
            return p

        contact = person(PersonKind.PERSON)
        session.flush()
        client.contact_person = contact

        main_codes = ["CRM", "PROSJEKT", "REGNSKAP"]
        statuses = [UserStatus.ACTIVE, UserStatus.ACTIVE, UserStatus.INVITED, UserStatus.BLOCKED]
        for k in range(2):
            user = User(bureau_id=bid, person=person(PersonKind.USER), status=statuses[(n + k) % 4])
            session.add(user)
            session.flush()
            session.add(
                PackageAssignment(
                    bureau_id=bid,
                    user=user,
                    package=packages[main_codes[(n + k) % 3]],
                    valid_from=first_of_month - timedelta(days=90),
                )
            )
            if k == 0:
                session.add(
                    PackageAssignment(
                        bureau_id=bid,
                        user=user,
                        package=packages["FAKTURA"],
                        valid_from=first_of_month - timedelta(days=60),
                    )
                )
        if n % 2 == 0:
            external = User(
                bureau_id=bid,
                person=person(PersonKind.EXTERNAL_USER),
                status=UserStatus.ACTIVE,
                end_date=today + timedelta(days=[10, 25, 60, -5][n % 4]),
            )
            session.add(external)
            session.flush()
            session.add(
                PackageAssignment(
                    bureau_id=bid,
                    user=external,
                    package=packages["CRM"],
                    valid_from=first_of_month - timedelta(days=30),
                )
            )
        if n % 3 == 0:
            session.add(User(bureau_id=bid, person=person(PersonKind.USER_WITHOUT_PACKAGES), status=UserStatus.ACTIVE))
        reseller = person(PersonKind.RESELLER_USER, with_email=False)
        employee = employees[n % len(employees)]
        reseller.first_name, reseller.last_name = employee.person.first_name, employee.person.last_name
        reseller.email = employee.person.email
        session.add(
            User(
                bureau_id=bid,
                person=reseller,
                status=UserStatus.ACTIVE,
                reseller_role=[ResellerRole.ACCOUNTANT, ResellerRole.AUDITOR, ResellerRole.INTEGRATION][n % 3],
                employee=employee,
                bank_access=n % 2 == 0,
                user_admin=n % 5 == 0,
            )
        )
        person(PersonKind.PERSON)
        session.flush()
