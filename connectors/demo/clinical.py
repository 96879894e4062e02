"""Clinical reference data: LOINC lab items, imaging exams and ICD-10 diagnoses, with how
each diagnosis is usually worked up and treated (so a record reads like a real one)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LabItem:
    loinc: str
    name: str
    unit: str
    low: float
    high: float
    decimals: int


# Units follow each LOINC code's property (mass concentration where LOINC says Mass/volume).
LAB_ITEMS: dict[str, LabItem] = {
    i.loinc: i
    for i in (
        LabItem("2345-7", "葡萄糖", "mg/dL", 70.0, 110.0, 0),
        LabItem("4548-4", "糖化血红蛋白", "%", 4.0, 6.0, 1),
        LabItem("2093-3", "总胆固醇", "mg/dL", 110.0, 200.0, 0),
        LabItem("2571-8", "甘油三酯", "mg/dL", 40.0, 150.0, 0),
        LabItem("2085-9", "高密度脂蛋白胆固醇", "mg/dL", 40.0, 80.0, 0),
        LabItem("13457-7", "低密度脂蛋白胆固醇", "mg/dL", 50.0, 130.0, 0),
        LabItem("718-7", "血红蛋白", "g/L", 115.0, 160.0, 0),
        LabItem("6690-2", "白细胞计数", "10*9/L", 3.5, 9.5, 2),
        LabItem("777-3", "血小板计数", "10*9/L", 125.0, 350.0, 0),
        LabItem("789-8", "红细胞计数", "10*12/L", 3.8, 5.8, 2),
        LabItem("2160-0", "肌酐", "mg/dL", 0.5, 1.2, 2),
        LabItem("3084-1", "尿酸", "mg/dL", 2.5, 7.0, 1),
        LabItem("1742-6", "丙氨酸氨基转移酶", "U/L", 9.0, 50.0, 0),
        LabItem("1920-8", "天门冬氨酸氨基转移酶", "U/L", 15.0, 40.0, 0),
        LabItem("2823-3", "钾", "mmol/L", 3.5, 5.3, 2),
        LabItem("2951-2", "钠", "mmol/L", 137.0, 147.0, 1),
        LabItem("1988-5", "C反应蛋白", "mg/L", 0.0, 10.0, 1),
    )
}

PANELS: dict[str, tuple[str, ...]] = {
    "CBC": ("718-7", "6690-2", "777-3", "789-8"),
    "LIVER": ("1742-6", "1920-8"),
    "RENAL": ("2160-0", "3084-1"),
    "LIPID": ("2093-3", "2571-8", "2085-9", "13457-7"),
    "GLUCOSE": ("2345-7", "4548-4"),
    "ELECTROLYTES": ("2823-3", "2951-2"),
    "CRP": ("1988-5",),
}


@dataclass(frozen=True)
class ImagingExam:
    code: str  # item_code: modality and body part
    modality: str
    body_part: str
    name: str
    normal: tuple[str, str]  # findings, impression
    abnormal: tuple[tuple[str, str], ...]


IMAGING: dict[str, ImagingExam] = {
    e.code: e
    for e in (
        ImagingExam(
            "CT-CHEST",
            "CT",
            "CHEST",
            "胸部CT平扫",
            (
                "双肺纹理清晰，肺实质内未见明确病变，纵隔淋巴结未见肿大，双侧胸腔未见积液。",
                "胸部CT平扫未见明显异常。",
            ),
            (
                (
                    "右肺下叶见斑片状磨玻璃密度影，边界模糊，邻近胸膜稍增厚。",
                    "右肺下叶炎症，建议抗感染治疗后复查。",
                ),
                (
                    "左肺上叶见直径约6mm实性结节，边缘光整，未见分叶及毛刺。",
                    "左肺上叶小结节，建议12个月后随访复查。",
                ),
                ("双肺透亮度增高，肺纹理稀疏，见多发肺大疱。", "慢性支气管炎、肺气肿改变。"),
            ),
        ),
        ImagingExam(
            "CT-HEAD",
            "CT",
            "HEAD",
            "头颅CT平扫",
            ("脑实质密度未见异常，脑室系统未见扩大，中线结构居中。", "颅脑CT平扫未见明显异常。"),
            (("左侧基底节区见小片状低密度影，边界欠清。", "左侧基底节区腔隙性脑梗死。"),),
        ),
        ImagingExam(
            "MR-HEAD",
            "MR",
            "HEAD",
            "头颅MRI平扫",
            (
                "脑实质信号未见异常，脑室系统大小形态正常，脑沟脑裂未见增宽。",
                "颅脑MRI平扫未见明显异常。",
            ),
            (("右侧放射冠区见斑片状长T1长T2信号，DWI呈高信号。", "右侧放射冠区急性脑梗死。"),),
        ),
        ImagingExam(
            "MR-LSPINE",
            "MR",
            "LSPINE",
            "腰椎MRI平扫",
            ("腰椎生理曲度存在，各椎间盘信号未见异常，椎管未见狭窄。", "腰椎MRI平扫未见明显异常。"),
            (
                ("L4/5椎间盘向后突出，相应水平硬膜囊受压，双侧神经根管狭窄。", "L4/5椎间盘突出。"),
                ("L3-S1椎间盘T2信号减低，椎体边缘骨质增生。", "腰椎退行性变。"),
            ),
        ),
        ImagingExam(
            "DR-CHEST",
            "DR",
            "CHEST",
            "胸部正位片",
            ("两肺野清晰，心影大小形态正常，双膈面光整，肋膈角锐利。", "胸部正位片未见明显异常。"),
            (("两肺纹理增多、紊乱，未见明确实变影。", "支气管炎改变。"),),
        ),
        ImagingExam(
            "DR-KNEE",
            "DR",
            "KNEE",
            "膝关节正侧位片",
            ("膝关节诸骨骨质完整，关节间隙正常，周围软组织未见肿胀。", "膝关节未见明显异常。"),
            (
                ("膝关节间隙变窄，关节边缘骨质增生，髁间隆起变尖。", "膝关节退行性变。"),
                ("胫骨中段见斜行骨折线，断端轻度移位。", "胫骨中段骨折。"),
            ),
        ),
        ImagingExam(
            "US-ABDOMEN",
            "US",
            "ABDOMEN",
            "腹部超声",
            (
                "肝、胆、胰、脾、双肾大小形态正常，实质回声均匀，胆管不扩张。",
                "腹部超声未见明显异常。",
            ),
            (
                ("肝脏体积稍大，实质回声增强，前场细密，后场衰减。", "轻度脂肪肝。"),
                ("胆囊内见强回声团伴声影，大小约12mm，随体位移动。", "胆囊结石。"),
            ),
        ),
        ImagingExam(
            "US-THYROID",
            "US",
            "THYROID",
            "甲状腺超声",
            ("甲状腺大小形态正常，实质回声均匀，未见明确结节。", "甲状腺超声未见明显异常。"),
            (
                (
                    "甲状腺右叶见低回声结节，大小约8×6mm，边界清，形态规则。",
                    "甲状腺右叶结节（TI-RADS 3类）。",
                ),
            ),
        ),
        ImagingExam(
            "US-HEART",
            "US",
            "HEART",
            "超声心动图",
            (
                "各房室大小正常，室壁厚度及运动正常，瓣膜形态活动未见异常。",
                "心脏结构及功能未见明显异常。",
            ),
            (
                (
                    "左室壁对称性增厚，室间隔厚约12mm，二尖瓣口血流频谱E<A。",
                    "左室肥厚，左室舒张功能减低。",
                ),
            ),
        ),
    )
}


@dataclass(frozen=True)
class Diagnosis:
    code: str
    text: str
    panels: tuple[str, ...]
    imaging: tuple[str, ...]
    drugs: tuple[str, ...]
    high: tuple[str, ...] = ()  # LOINC items this disease tends to push above range


DIAGNOSES: dict[str, Diagnosis] = {
    d.code: d
    for d in (
        Diagnosis(
            "I10",
            "原发性高血压",
            ("RENAL", "LIPID", "ELECTROLYTES"),
            ("US-HEART",),
            ("苯磺酸氨氯地平片", "缬沙坦胶囊", "酒石酸美托洛尔缓释片"),
            ("2093-3",),
        ),
        Diagnosis(
            "E11.9",
            "2型糖尿病，不伴有并发症",
            ("GLUCOSE", "RENAL", "LIPID"),
            (),
            ("盐酸二甲双胍片", "格列美脲片", "甘精胰岛素注射液"),
            ("2345-7", "4548-4"),
        ),
        Diagnosis(
            "N18.3",
            "慢性肾脏病3期",
            ("RENAL", "ELECTROLYTES", "CBC"),
            ("US-ABDOMEN",),
            ("缬沙坦胶囊",),
            ("2160-0", "3084-1"),
        ),
        Diagnosis(
            "E78.5",
            "高脂血症",
            ("LIPID", "LIVER"),
            (),
            ("阿托伐他汀钙片",),
            ("2093-3", "2571-8", "13457-7"),
        ),
        Diagnosis(
            "J06.9",
            "急性上呼吸道感染",
            ("CBC", "CRP"),
            ("DR-CHEST",),
            ("布洛芬缓释胶囊", "氯雷他定片", "连花清瘟胶囊", "复方甘草片"),
            ("6690-2",),
        ),
        Diagnosis(
            "J18.9",
            "肺炎",
            ("CBC", "CRP"),
            ("CT-CHEST",),
            ("左氧氟沙星片", "头孢克肟片"),
            ("6690-2", "1988-5"),
        ),
        Diagnosis("J44.9", "慢性阻塞性肺疾病", ("CBC",), ("CT-CHEST",), ("复方甘草片",)),
        Diagnosis("K29.7", "胃炎", ("CBC",), ("US-ABDOMEN",), ("奥美拉唑肠溶胶囊",)),
        Diagnosis("A09.9", "胃肠炎", ("CBC", "CRP"), (), ("蒙脱石散",), ("6690-2",)),
        Diagnosis(
            "K80.2",
            "胆囊结石不伴有胆囊炎",
            ("LIVER", "CBC"),
            ("US-ABDOMEN",),
            ("奥美拉唑肠溶胶囊",),
            ("1742-6",),
        ),
        Diagnosis("M54.5", "腰痛", (), ("MR-LSPINE",), ("布洛芬缓释胶囊",)),
        Diagnosis("M17.9", "膝关节病", (), ("DR-KNEE",), ("布洛芬缓释胶囊",)),
        Diagnosis("S82.2", "胫骨骨干骨折", ("CBC",), ("DR-KNEE",), ("布洛芬缓释胶囊",)),
        Diagnosis(
            "I25.1",
            "动脉硬化性心脏病",
            ("LIPID", "CBC"),
            ("US-HEART",),
            ("阿司匹林肠溶片", "阿托伐他汀钙片"),
            ("13457-7",),
        ),
        Diagnosis(
            "I63.9",
            "脑梗死",
            ("LIPID", "GLUCOSE", "CBC"),
            ("CT-HEAD", "MR-HEAD"),
            ("阿司匹林肠溶片", "阿托伐他汀钙片"),
        ),
        Diagnosis("E04.1", "单个甲状腺结节", (), ("US-THYROID",), ("左甲状腺素钠片",)),
        Diagnosis(
            "Z00.0",
            "一般医学检查",
            ("CBC", "LIVER", "LIPID", "GLUCOSE"),
            ("DR-CHEST", "US-ABDOMEN"),
            (),
        ),
    )
}

CHRONIC = ("I10", "E11.9")  # 门诊慢特病 with their own visit type in the demo
OUTPATIENT_DX = (
    ("J06.9", 30),
    ("K29.7", 12),
    ("A09.9", 8),
    ("M54.5", 10),
    ("M17.9", 6),
    ("E78.5", 6),
    ("E04.1", 4),
    ("Z00.0", 12),
    ("J44.9", 3),
    ("N18.3", 2),
)
INPATIENT_DX = (
    ("J18.9", 25),
    ("I63.9", 15),
    ("I25.1", 15),
    ("K80.2", 15),
    ("S82.2", 10),
    ("J44.9", 10),
    ("N18.3", 5),
)
