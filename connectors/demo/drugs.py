"""Drugs in the style of the national medical-insurance drug codes (国家医保药品代码: X for
western medicine, Z for Chinese patent medicine, then the class and product digits)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Drug:
    code: str
    name: str
    unit: str
    dosage: str
    price_fen: int  # per unit (box, bottle, pen)


DRUGS: dict[str, Drug] = {
    d.name: d
    for d in (
        Drug("XA10BAE054A001010101445", "盐酸二甲双胍片", "盒", "0.5g 每日3次 口服", 1580),
        Drug("XA10BBG091A001010102731", "格列美脲片", "盒", "2mg 每日1次 口服", 2860),
        Drug("XA10AEG050B002010100532", "甘精胰岛素注射液", "支", "10单位 每晚1次 皮下注射", 17960),
        Drug("XC08CAA067A001010104163", "苯磺酸氨氯地平片", "盒", "5mg 每日1次 口服", 2250),
        Drug("XC09CAX023A001010201276", "缬沙坦胶囊", "盒", "80mg 每日1次 口服", 3120),
        Drug("XC07ABM115A012010100904", "酒石酸美托洛尔缓释片", "盒", "47.5mg 每日1次 口服", 2680),
        Drug("XC10AAA223A001010105512", "阿托伐他汀钙片", "盒", "20mg 每晚1次 口服", 3340),
        Drug("XB01ACA056A001010103027", "阿司匹林肠溶片", "盒", "100mg 每日1次 口服", 1560),
        Drug("XA02BCA211E001010101848", "奥美拉唑肠溶胶囊", "盒", "20mg 每日2次 口服", 1890),
        Drug("XJ01CAA040E001010102215", "阿莫西林胶囊", "盒", "0.5g 每日3次 口服", 1260),
        Drug("XJ01DDT180A001010300768", "头孢克肟片", "盒", "0.1g 每日2次 口服", 2940),
        Drug("XJ01MAL147A001010104480", "左氧氟沙星片", "盒", "0.5g 每日1次 口服", 2380),
        Drug("XM01AEB070E001010200319", "布洛芬缓释胶囊", "盒", "0.3g 每日2次 口服", 1680),
        Drug("XR06AXL073A001010101667", "氯雷他定片", "盒", "10mg 每日1次 口服", 1720),
        Drug("XA07BCM241P001010100285", "蒙脱石散", "盒", "3g 每日3次 口服", 1450),
        Drug("XR05DAF051A001010100613", "复方甘草片", "瓶", "3片 每日3次 口服", 620),
        Drug("ZA01BAL0196010103389", "连花清瘟胶囊", "盒", "4粒 每日3次 口服", 2580),
        Drug("XH03AAL017A001010100171", "左甲状腺素钠片", "盒", "50μg 每日1次 口服", 2910),
    )
}
