"""Drug classes for statistics: the first four characters of a national medical-insurance drug
code (国家医保药品代码), X + the ATC class for western medicine, Z + the class for Chinese
patent medicine. The list is public, so it is the domain a differentially private answer
releases over; a code outside it counts as OTHER."""

from __future__ import annotations

OTHER = "OTHER"

DRUG_CLASSES: dict[str, str] = {
    "XA02": "drugs for acid-related disorders",
    "XA07": "antidiarrhoeals, intestinal anti-infectives",
    "XA10": "drugs used in diabetes",
    "XB01": "antithrombotic agents",
    "XC07": "beta-blocking agents",
    "XC08": "calcium channel blockers",
    "XC09": "agents acting on the renin-angiotensin system",
    "XC10": "lipid-modifying agents",
    "XH03": "thyroid therapy",
    "XJ01": "antibacterials for systemic use",
    "XM01": "anti-inflammatory and antirheumatic products",
    "XR05": "cough and cold preparations",
    "XR06": "antihistamines for systemic use",
    "ZA01": "Chinese patent medicine: exterior-releasing (解表剂)",
}
