"""GB/T 2260 codes of real cities and districts in the three demo provinces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    short: str


@dataclass(frozen=True)
class District:
    code: str
    name: str

    @property
    def city(self) -> str:
        """The city (prefecture) code: the pooling region (统筹区) of the district."""
        return self.code[:4] + "00"

    @property
    def province(self) -> str:
        return self.code[:2] + "0000"


PROVINCES: dict[str, Province] = {
    "330000": Province("330000", "浙江省", "浙"),
    "370000": Province("370000", "山东省", "鲁"),
    "220000": Province("220000", "吉林省", "吉"),
}

CITIES: dict[str, str] = {
    "330100": "杭州市",
    "330200": "宁波市",
    "330300": "温州市",
    "330400": "嘉兴市",
    "330500": "湖州市",
    "330600": "绍兴市",
    "330700": "金华市",
    "331000": "台州市",
    "370100": "济南市",
    "370200": "青岛市",
    "370300": "淄博市",
    "370600": "烟台市",
    "370700": "潍坊市",
    "370800": "济宁市",
    "371300": "临沂市",
    "220100": "长春市",
    "220200": "吉林市",
    "220300": "四平市",
    "220500": "通化市",
    "222400": "延边朝鲜族自治州",
}

_DISTRICTS = (
    ("330102", "上城区"),
    ("330105", "拱墅区"),
    ("330106", "西湖区"),
    ("330108", "滨江区"),
    ("330110", "余杭区"),
    ("330203", "海曙区"),
    ("330205", "江北区"),
    ("330212", "鄞州区"),
    ("330302", "鹿城区"),
    ("330304", "瓯海区"),
    ("330402", "南湖区"),
    ("330502", "吴兴区"),
    ("330602", "越城区"),
    ("330702", "婺城区"),
    ("331002", "椒江区"),
    ("370102", "历下区"),
    ("370103", "市中区"),
    ("370104", "槐荫区"),
    ("370105", "天桥区"),
    ("370112", "历城区"),
    ("370202", "市南区"),
    ("370203", "市北区"),
    ("370211", "黄岛区"),
    ("370212", "崂山区"),
    ("370303", "张店区"),
    ("370602", "芝罘区"),
    ("370705", "奎文区"),
    ("370811", "任城区"),
    ("371302", "兰山区"),
    ("220102", "南关区"),
    ("220103", "宽城区"),
    ("220104", "朝阳区"),
    ("220105", "二道区"),
    ("220106", "绿园区"),
    ("220202", "昌邑区"),
    ("220204", "船营区"),
    ("220302", "铁西区"),
    ("220502", "东昌区"),
    ("222401", "延吉市"),
)

DISTRICTS: tuple[District, ...] = tuple(District(c, n) for c, n in _DISTRICTS)
DISTRICTS_BY_PROVINCE: dict[str, tuple[District, ...]] = {
    p: tuple(d for d in DISTRICTS if d.province == p) for p in PROVINCES
}
DISTRICT_BY_CODE: dict[str, District] = {d.code: d for d in DISTRICTS}

# Share of the demo population insured in each province (roughly their relative populations).
PROVINCE_WEIGHTS: dict[str, float] = {"330000": 0.40, "370000": 0.42, "220000": 0.18}

STREETS = (
    "文三路",
    "解放路",
    "中山路",
    "人民路",
    "建设路",
    "和平路",
    "新华路",
    "胜利街",
    "长江路",
    "黄河路",
    "学院路",
    "朝阳街",
    "光明路",
    "幸福路",
    "滨河路",
    "文化路",
)


def full_place(district: District) -> str:
    """Province, city and district names, as written at the start of an address."""
    province = PROVINCES[district.province].name
    return f"{province}{CITIES[district.city]}{district.name}"
