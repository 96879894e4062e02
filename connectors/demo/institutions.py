"""The demo institution directory: the hospitals and pharmacies of ``medfed.toml`` (each a
source of its own) and more designated institutions across the three provinces that appear in
the bureaus' visits and settlements but keep no database in the demo."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.demo import regions

TERTIARY, SECONDARY, PRIMARY, NONE = "TERTIARY", "SECONDARY", "PRIMARY", "NONE"
HOSPITAL, PHARMACY = "HOSPITAL", "PHARMACY"


@dataclass(frozen=True)
class Institution:
    code: str
    name: str
    level: str
    kind: str
    internet: bool = False
    source: bool = False  # has its own database (LIS/PACS, or dispensings) in medfed.toml

    @property
    def region(self) -> str:
        return self.code[1:7]

    @property
    def city(self) -> str:
        return self.code[1:5] + "00"

    @property
    def province(self) -> str:
        return self.code[1:3] + "0000"

    @property
    def serial(self) -> str:
        return self.code[-5:]


I = Institution  # noqa: E741 - a short alias keeps the table below readable
INSTITUTIONS: tuple[Institution, ...] = (
    # -- the sources of medfed.toml ----------------------------------------------------------
    I("H33010600001", "杭州西湖示范医院", TERTIARY, HOSPITAL, internet=True, source=True),
    I("H33020300002", "宁波海曙第二人民医院", SECONDARY, HOSPITAL, source=True),
    I("H37010200003", "济南历下示范医院", TERTIARY, HOSPITAL, internet=True, source=True),
    I("H37020200004", "青岛市南区社区卫生服务中心", PRIMARY, HOSPITAL, source=True),
    I("H22010200005", "长春南关示范医院", TERTIARY, HOSPITAL, source=True),
    I("P33010600101", "杭州西湖惠民大药房", NONE, PHARMACY, source=True),
    I("P37010200102", "济南历下泉城大药房", NONE, PHARMACY, source=True),
    # -- more designated institutions (directory, visits and settlements only) ---------------
    I("H33010200006", "杭州上城中医院", TERTIARY, HOSPITAL),
    I("H33010800007", "杭州滨江区社区卫生服务中心", PRIMARY, HOSPITAL),
    I("H33021200008", "宁波鄞州人民医院", SECONDARY, HOSPITAL, internet=True),
    I("H33030200009", "温州鹿城示范医院", TERTIARY, HOSPITAL),
    I("H33060200010", "绍兴越城区社区卫生服务中心", PRIMARY, HOSPITAL),
    I("H37010400011", "济南槐荫第二人民医院", SECONDARY, HOSPITAL),
    I("H37021200012", "青岛崂山示范医院", TERTIARY, HOSPITAL, internet=True),
    I("H37030300013", "淄博张店人民医院", SECONDARY, HOSPITAL),
    I("H37070500014", "潍坊奎文区社区卫生服务中心", PRIMARY, HOSPITAL),
    I("H37130200015", "临沂兰山人民医院", SECONDARY, HOSPITAL),
    I("H22010400016", "长春朝阳互联网医院", SECONDARY, HOSPITAL, internet=True),
    I("H22020200017", "吉林昌邑人民医院", SECONDARY, HOSPITAL),
    I("H22010600018", "长春绿园区社区卫生服务中心", PRIMARY, HOSPITAL),
    I("H22240100019", "延吉市人民医院", SECONDARY, HOSPITAL),
    I("H22030200020", "四平铁西区社区卫生服务中心", PRIMARY, HOSPITAL),
    I("P33021200103", "宁波鄞州百姓大药房", NONE, PHARMACY),
    I("P22010200104", "长春南关益民大药房", NONE, PHARMACY),
)
del I

BY_CODE: dict[str, Institution] = {i.code: i for i in INSTITUTIONS}
HOSPITALS_BY_PROVINCE: dict[str, tuple[Institution, ...]] = {
    p: tuple(i for i in INSTITUTIONS if i.kind == HOSPITAL and i.province == p)
    for p in ("330000", "370000", "220000")
}
PHARMACIES_BY_PROVINCE: dict[str, tuple[Institution, ...]] = {
    p: tuple(i for i in INSTITUTIONS if i.kind == PHARMACY and i.province == p)
    for p in ("330000", "370000", "220000")
}
INTERNET_BY_PROVINCE: dict[str, tuple[Institution, ...]] = {
    p: tuple(i for i in hospitals if i.internet) for p, hospitals in HOSPITALS_BY_PROVINCE.items()
}
# The hospitals with a database of their own are where results live, so patients are steered
# towards them: that is what makes "results in several hospitals" common enough to find.
HOSPITAL_WEIGHTS: dict[str, tuple[float, ...]] = {
    p: tuple(3.0 if i.source else 1.0 for i in hospitals)
    for p, hospitals in HOSPITALS_BY_PROVINCE.items()
}


# Telephone area codes (长途区号) of the demo's cities.
AREA_CODES: dict[str, str] = {
    "330100": "0571", "330200": "0574", "330300": "0577", "330400": "0573", "330500": "0572",
    "330600": "0575", "330700": "0579", "331000": "0576", "370100": "0531", "370200": "0532",
    "370300": "0533", "370600": "0535", "370700": "0536", "370800": "0537", "371300": "0539",
    "220100": "0431", "220200": "0432", "220300": "0434", "220500": "0435", "222400": "0433",
}  # fmt: skip


def address_of(institution: Institution) -> str:
    """A plausible street address in the institution's district (public directory data)."""
    district = regions.DISTRICT_BY_CODE.get(institution.region)
    place = regions.full_place(district) if district else ""
    serial = int(institution.serial)
    return f"{place}{regions.STREETS[serial % len(regions.STREETS)]}{serial * 7 % 300 + 1}号"


def phone_of(institution: Institution) -> str:
    """The institution's switchboard (总机): area code and an eight-digit number."""
    return f"{AREA_CODES[institution.city]}-8{int(institution.serial):07d}"
