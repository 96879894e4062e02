"""The pages in a real browser: a patient signs in through a real OpenID Connect provider,
reads their record across two provinces, grants and revokes a consent and sees a clinician's
access; a security officer finds that access, verifies its inclusion proof in the page and
sees verification fail once the log is tampered with; axe-core finds no serious violation."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from datetime import date, timedelta

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support import REPO
from tests.support.browser import AXE, World

pytestmark = pytest.mark.slow
ON_SESSION_LOOP = pytest.mark.asyncio(loop_scope="session")  # the one browser's loop
HOSPITAL = "H33010600001"
RESEARCHER = "R33010600001"
SERIOUS = ("serious", "critical")
PROVINCES = {"330000": "浙江省", "370000": "山东省", "220000": "吉林省"}


async def sign_in(page, world: World, path: str, login: str) -> None:
    await page.goto(world.url + path)
    await page.wait_for_url("**/signin**")
    await page.click("#oidc")
    await page.wait_for_selector("input[name=login]")  # the provider's own login page
    assert page.url.startswith(world.provider.url)
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", "any")
    await page.click("button[type=submit]")
    # The provider's consent page (scopes openid and api for medfed).
    await page.wait_for_selector("button[type=submit]:has-text('Continue')")
    await page.click("button[type=submit]:has-text('Continue')")
    try:
        await page.wait_for_url(world.url + path)
    except Exception:
        raise AssertionError(
            f"sign-in stopped at {page.url}: {(await page.inner_text('body'))[:1500]}"
        ) from None
    await page.wait_for_selector("body[data-ready=true]")


async def serious_violations(page) -> list[dict]:
    # Evaluated over the DevTools protocol: the page's own CSP (no inline script) stays on.
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    found = await page.evaluate("async () => (await axe.run(document)).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in found
        if v["impact"] in SERIOUS
    ]


def clinician_reads(world: World, *, emergency: bool = False) -> str:
    purposes = ["TREATMENT", "EMERGENCY"] if emergency else None
    token = world.demo.mint(role="clinician", org=HOSPITAL, purposes=purposes)
    headers = {"Authorization": f"Bearer {token}"}
    if emergency:
        headers["X-Purpose-Of-Use"] = "EMERGENCY"  # break-glass, with its reason
        headers["X-Break-Glass-Reason"] = "UNCONSCIOUS"
        headers["X-Break-Glass-Text"] = "brought%20in%20unconscious"
    answer = httpx.post(
        world.url + "/graphql",
        headers=headers,
        json={
            "query": "query($p: ID!) { person(personId: $p) "
            "{ testResults(first: 3) { nodes { itemName } } } }",
            "variables": {"p": world.patient["personId"]},
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return f"clinician:{HOSPITAL}"


def researcher_asks(world: World) -> str:
    """An open-data partner's differentially private question: a spend from its budget."""
    token = world.demo.mint(role="researcher", org=RESEARCHER)
    answer = httpx.post(
        world.url + "/graphql",
        headers={"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "RESEARCH"},
        json={"query": "{ settlementStatistics(groupBy: [MEDICAL_TYPE], epsilon: 1.0) { grade } }"},
        timeout=60,
    )
    assert answer.json()["data"]["settlementStatistics"]["grade"] == "DP", answer.text
    return f"researcher:{RESEARCHER}"


def supervision_scan(world: World) -> int:
    """The claims review over the demo's years (the real command): the warnings it stores."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(world.data_dir / "medfed.toml"),
         "--data-dir", str(world.data_dir), "supervise", "scan", "--from", "2017-01-01",
         "--to", "2021-01-01", "--quiet"],
        check=True, capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    return json.loads(done.stdout.splitlines()[-1])["stored"]


def other_verifier_key(name: str) -> str:
    """A well-formed C2SP verifier key of the same name for another Ed25519 key."""
    public = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4].hex()
    encoded = base64.b64encode(b"\x01" + public).decode()
    return f"{name}+{key_id}+{encoded}"


@pytest_asyncio.fixture(loop_scope="session")
async def context(chromium):
    found = await chromium.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    yield found
    await found.close()


def test_pages_answer_with_a_strict_content_security_policy(world):
    for path in ("/patient", "/console", "/signin", "/pages/static/patient.js"):
        answer = httpx.get(world.url + path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
    # Positive control: the API keeps its own policy.
    assert httpx.get(world.url + "/healthz").headers["content-security-policy"] == (
        "frame-ancestors 'none'"
    )


@ON_SESSION_LOOP
async def test_patient_signs_in_sees_two_provinces_grants_revokes_and_sees_access(
    world, context, tmp_path
):
    page = await context.new_page()
    await sign_in(page, world, "/patient", "patient")
    # The token is in sessionStorage only: nothing in localStorage, no cookie of ours.
    assert await page.evaluate("Object.keys(localStorage)") == []
    kept = await page.evaluate("sessionStorage.getItem('medfed.token')")
    assert kept
    # The only cookies are the provider's own session (same host, another port), and no
    # script can read them.
    cookies = await context.cookies(world.url)
    assert all(c["httpOnly"] and c["value"] not in kept for c in cookies)
    assert await page.evaluate("document.cookie") == ""
    regions = set(await page.locator("#timeline-list .region").all_inner_texts())
    insured = {PROVINCES[code] for code in world.patient["insuredIn"]}
    assert len(insured) == 2 and insured <= regions  # one record across two provinces
    assert await page.locator("#timeline-list li.settlement .split").count() > 0
    assert await page.locator("#results-list .chip").count() > 0  # recognition badges
    # Followed links and named codes: a visit shows its settlement (Visit.settlement) and its
    # diagnoses by name (codes), not as bare ICD-10 codes.
    assert await page.locator("#timeline-list li.visit .chip", has_text="已结算").count() > 0
    visits = " ".join(await page.locator("#timeline-list li.visit").all_inner_texts())
    assert re.search(r"诊断: [A-Z]\d\d(\.\d+)? [\u4e00-\u9fff]", visits), visits[:300]

    # Grant a consent to the clinician's hospital, for lab results and treatment.
    await page.fill("#grantee", HOSPITAL)
    await page.check("input[name=class][value=LAB_RESULT]")
    await page.select_option("#purpose", "TREATMENT")
    await page.fill("#until", (date.today() + timedelta(days=30)).isoformat())
    await page.click("#grant button[type=submit]")
    consent = page.locator("#consent-list li.consent").first
    await consent.get_by_text("有效").wait_for()

    # The clinician reads; the patient sees it in "who saw my data".
    clinician_reads(world)
    await page.click("#refresh-access")
    await page.locator("#access-list li", has_text="医生").first.wait_for()
    assert await page.locator("#access-list li", has_text="诊疗").count() > 0
    # A break-glass read is marked as such.
    clinician_reads(world, emergency=True)
    await page.click("#refresh-access")
    await page.locator("#access-list li.glass", has_text="紧急访问").first.wait_for()

    assert await serious_violations(page) == []
    await page.click("#lang")
    await page.locator("h2#access-title", has_text="Who saw my data").wait_for()
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert await serious_violations(page) == []  # the English view too
    await page.click("#lang")
    await page.screenshot(path=str(world.screenshot_path("patient.png", tmp_path)), full_page=True)

    # Revoke it.
    await consent.get_by_role("button").click()
    await page.locator("#consent-list li.consent", has_text="已撤销").first.wait_for()

    # Phone width: nothing wider than the screen.
    await page.set_viewport_size({"width": 375, "height": 800})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await page.close()


@ON_SESSION_LOOP
async def test_officer_finds_the_access_verifies_it_and_sees_tampering_fail(
    world, context, tmp_path
):
    clinician_reads(world)
    clinician_reads(world, emergency=True)  # a break-glass read: an alert to handle
    partner = researcher_asks(world)
    stored = supervision_scan(world)
    page = await context.new_page()
    await sign_in(page, world, "/console", "officer")
    # The partner's spend is in the budgets; the scan's warnings are listed with their grade.
    budget = page.locator(f"#budgets-body tr[data-partner='{partner}']")
    assert "1 / 10" in await budget.inner_text()
    assert await page.locator("#warnings-list li.warning").count() == min(stored, 20)
    if not stored:
        assert await page.locator("#warnings-list li", has_text="暂无风险预警").count() == 1
    await page.fill("#f-person", world.patient["personId"])
    await page.select_option("#f-purpose", "TREATMENT")
    searches = int(await page.get_attribute("#events", "data-searches"))
    await page.click("#filter button[type=submit]")
    await page.wait_for_selector(f"#events[data-searches='{searches + 1}']")
    row = page.locator("#events-body tr").first
    assert "clinician" in await row.inner_text()
    await row.wait_for()
    index = int(await row.get_attribute("data-index"))
    await row.get_by_role("button").click()
    await page.locator("#detail-body", has_text=world.patient["personId"]).wait_for()

    key = (world.data_dir / "keys" / "audit-log.pub").read_text().strip()
    await page.fill("#verifier", key)
    await page.click("#verify-event")
    await page.locator("#verify-result.ok").wait_for()
    assert str(index) in await page.inner_text("#verify-result")

    # Handle the break-glass alert: resolved with a note, its form gone, the state shown.
    alert = page.locator("#alerts-list li.alert[data-state=OPEN]", has_text="紧急访问").first
    alert_id = await alert.get_attribute("data-alert")
    await alert.locator("select[name=action]").select_option("RESOLVE")
    await alert.locator("textarea[name=note]").fill("已电话核实：患者昏迷送医")
    await alert.locator("button[type=submit]").click()
    closed = page.locator(f"#alerts-list li.alert[data-alert='{alert_id}'][data-state=RESOLVED]")
    await closed.wait_for()
    assert await closed.locator("form").count() == 0
    assert "已电话核实" in await closed.inner_text()

    assert await serious_violations(page) == []
    await page.screenshot(path=str(world.screenshot_path("console.png", tmp_path)), full_page=True)
    await page.click("#lang")
    await page.locator("h2#budgets-title", has_text="Privacy budgets").wait_for()
    assert await serious_violations(page) == []  # the English view too
    await page.click("#lang")

    # Tamper with that event in the gateway's database: the page must say so.
    with sqlite3.connect(world.data_dir / "gateway.db") as db:
        (entry,) = db.execute("SELECT entry FROM audit_events WHERE idx = ?", (index,)).fetchone()
        forged = bytes(entry).replace(b'"TREATMENT"', b'"EMERGENCY"')
        assert forged != bytes(entry)
        db.execute("UPDATE audit_events SET entry = ? WHERE idx = ?", (forged, index))
    await page.click("#verify-event")
    await page.locator("#verify-result.bad").wait_for()
    assert "篡改" in await page.inner_text("#verify-result")

    # Restored, it verifies again; under another key it does not (the signature is checked).
    with sqlite3.connect(world.data_dir / "gateway.db") as db:
        db.execute("UPDATE audit_events SET entry = ? WHERE idx = ?", (entry, index))
    await page.click("#verify-event")
    await page.locator("#verify-result.ok").wait_for()
    await page.fill("#verifier", other_verifier_key(key.split("+")[0]))
    await page.click("#verify-event")
    await page.locator("#verify-result.bad").wait_for()
    assert "没有此密钥的签名" in await page.inner_text("#verify-result")

    # Break-glass review lists the emergency reads, marked.
    clinician_reads(world, emergency=True)
    searches = int(await page.get_attribute("#events", "data-searches"))
    await page.click("#glass-review")
    await page.wait_for_selector(f"#events[data-searches='{searches + 1}']")
    rows = page.locator("#events-body tr")
    assert await rows.count() > 0
    assert await page.locator("#events-body tr:not(.glass)").count() == 0
    await page.close()
