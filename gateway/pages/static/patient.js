// /patient: the signed-in patient's lifetime cloud record (医保云档案) across provinces,
// their test results, consents and who saw their data. Only the public GraphQL API, with
// the patient's own token.
import {
  clear, gql, h, lang, languageSwitch, province, randomKey, requireSignIn, signOut, t, translate,
  when, yuan,
} from "/pages/static/common.js";

const STRINGS = {
  zh: {
    title: "我的医保云档案", otherLanguage: "English", signOut: "退出", skip: "跳到正文",
    sections: "页面导航", timeline: "档案时间线", results: "检查检验", consents: "授权",
    access: "谁看过我的数据", refresh: "刷新", loading: "正在加载…", hello: "您好，",
    settledAs: "已结算", dispensed: "已购药", notSettled: "未结算",
    insuredIn: "参保地：", enrollment: "参保", visit: "就诊", prescription: "处方",
    purchase: "购药", settlement: "结算", filing: "异地就医备案", diagnoses: "诊断",
    fund: "统筹基金", account: "个人账户", cash: "现金", total: "合计", crossProvince: "跨省",
    status: "状态", valid: "有效期", destination: "就医地", category: "类别",
    performedBy: "检查机构", RECOGNIZED: "互认", EXPIRED: "已过互认期",
    NOT_IN_CATALOGUE: "不在互认目录", INSTITUTION_LEVEL_TOO_LOW: "机构等级不足",
    INSTITUTION_UNKNOWN: "机构未知", grantTitle: "授权一家机构查看我的数据",
    grantee: "机构编码", granteeHint: "例如 H33010600001", dataClasses: "数据类别",
    purpose: "用途", until: "有效期至", grant: "授权", revoke: "撤销授权", granted: "已授权",
    revoked: "已撤销", noConsents: "尚无授权", noAccess: "尚无访问记录", breakGlass: "紧急访问",
    partial: "部分内容未能显示：", signedOut: "请重新登录", from: "自", to: "至",
    ACTIVE: "有效", PENDING: "待生效", REVOKED: "已撤销", EXPIRED_CONSENT: "已过期",
    IDENTITY: "身份", CONTACT: "联系方式", ENROLLMENT: "参保", VISIT: "就诊", DIAGNOSIS: "诊断",
    PRESCRIPTION: "处方", LAB_RESULT: "检验", IMAGING: "影像", SETTLEMENT: "结算", FILING: "备案",
    TREATMENT: "诊疗", RESEARCH: "科研", UNDERWRITING: "核保", SETTLEMENT_P: "结算",
    FUND_SUPERVISION: "基金监管", PATIENT_ACCESS: "本人查询", AUDIT: "审计", EMERGENCY: "紧急救治",
    OK: "成功", DENIED: "被拒绝", PARTIAL: "部分", ERROR: "出错", unit: "单位",
    INTENT: "写入中", APPLIED: "已写入", NOT_APPLIED: "未写入",
    clinician: "医生", pharmacist: "药师", insurance_agency: "医保经办", settlement_center: "结算中心",
    researcher: "科研", commercial_insurer: "商业保险", auditor: "审计员", admin: "管理员", patient: "本人",
  },
  en: {
    title: "My medical insurance record", otherLanguage: "中文", signOut: "Sign out",
    skip: "Skip to content", sections: "Sections", timeline: "Record timeline",
    results: "Test results", consents: "Consents", access: "Who saw my data", refresh: "Refresh",
    loading: "Loading…", hello: "Hello, ", settledAs: "Settled",
    dispensed: "Dispensed", notSettled: "Not settled", insuredIn: "Insured in: ", enrollment: "Enrolment",
    visit: "Visit", prescription: "Prescription", purchase: "Drug purchase",
    settlement: "Settlement", filing: "Cross-region filing", diagnoses: "Diagnoses",
    fund: "Pooled fund", account: "Personal account", cash: "Cash", total: "Total",
    crossProvince: "cross-province", status: "Status", valid: "Valid", destination: "Destination",
    category: "Category", performedBy: "Performed by", RECOGNIZED: "Recognised",
    EXPIRED: "Recognition expired", NOT_IN_CATALOGUE: "Not in catalogue",
    INSTITUTION_LEVEL_TOO_LOW: "Level too low", INSTITUTION_UNKNOWN: "Unknown institution",
    grantTitle: "Let an institution see my data", grantee: "Institution code",
    granteeHint: "e.g. H33010600001", dataClasses: "Data classes", purpose: "Purpose",
    until: "Valid until", grant: "Grant", revoke: "Revoke", granted: "Granted",
    revoked: "Revoked", noConsents: "No consents yet", noAccess: "No access yet",
    breakGlass: "Break-glass", partial: "Some items could not be shown: ",
    signedOut: "Please sign in again", from: "from", to: "to", ACTIVE: "Active",
    PENDING: "Pending", REVOKED: "Revoked", EXPIRED_CONSENT: "Expired", IDENTITY: "Identity",
    CONTACT: "Contact", ENROLLMENT: "Enrolment", VISIT: "Visits", DIAGNOSIS: "Diagnoses",
    PRESCRIPTION: "Prescriptions", LAB_RESULT: "Lab results", IMAGING: "Imaging",
    SETTLEMENT: "Settlements", FILING: "Filings", TREATMENT: "Treatment", RESEARCH: "Research",
    UNDERWRITING: "Underwriting", SETTLEMENT_P: "Settlement", FUND_SUPERVISION: "Fund supervision",
    PATIENT_ACCESS: "My own access", AUDIT: "Audit", EMERGENCY: "Emergency", OK: "OK",
    DENIED: "Denied", PARTIAL: "Partial", ERROR: "Error", unit: "unit", clinician: "Clinician",
    INTENT: "Writing", APPLIED: "Written", NOT_APPLIED: "Not written",
    pharmacist: "Pharmacist", insurance_agency: "Insurance agency",
    settlement_center: "Settlement centre", researcher: "Researcher",
    commercial_insurer: "Commercial insurer", auditor: "Auditor", admin: "Administrator",
    patient: "Me",
  },
};

const LABELS = {
  zh: {
    OUTPATIENT: "门诊", INPATIENT: "住院", INTERNET_REVISIT: "互联网复诊", CHRONIC_OUTPATIENT: "门诊慢特病",
    PHARMACY: "药店购药", EMPLOYEE: "职工医保", RESIDENT: "居民医保", SUSPENDED: "暂停", ENDED: "终止",
    RELOCATED_RETIREE: "异地安置退休", LONG_TERM_RESIDENT: "异地长期居住",
    REFERRAL: "转诊转院", TEMPORARY: "临时外出就医", EMERGENCY: "急诊抢救", APP: "国家医保App",
    MINI_PROGRAM: "小程序", PHONE: "电话", COUNTER: "窗口", WEB: "网站", TERTIARY: "三级",
    SECONDARY: "二级", PRIMARY: "一级", NONE: "未定级", H: "偏高", L: "偏低", N: "正常",
    ACTIVE: "有效", REVOKED: "已撤销", EXPIRED: "已过期", APPROVED: "审核通过", REJECTED: "审核未通过",
    PENDING: "待审核", LAB: "检验", IMAGING: "检查",
  },
  en: {
    OUTPATIENT: "Outpatient", INPATIENT: "Inpatient", INTERNET_REVISIT: "Internet follow-up",
    CHRONIC_OUTPATIENT: "Chronic outpatient", PHARMACY: "Pharmacy", EMPLOYEE: "Employee insurance",
    RESIDENT: "Resident insurance", SUSPENDED: "Suspended", ENDED: "Ended",
    RELOCATED_RETIREE: "Relocated retiree",
    LONG_TERM_RESIDENT: "Long-term resident", REFERRAL: "Referral", TEMPORARY: "Temporary stay",
    EMERGENCY: "Emergency", APP: "National app", MINI_PROGRAM: "Mini program", PHONE: "Phone",
    COUNTER: "Counter", WEB: "Website", TERTIARY: "Tertiary", SECONDARY: "Secondary",
    PRIMARY: "Primary", NONE: "Unrated", H: "high", L: "low", N: "normal", ACTIVE: "Active",
    REVOKED: "Revoked", EXPIRED: "Expired", APPROVED: "Approved", REJECTED: "Rejected",
    PENDING: "Pending review", LAB: "Lab", IMAGING: "Imaging",
  },
};

// A code's label (visit type, insurance type, filing category, …), or the code itself.
function label(code) {
  return code == null ? "" : LABELS[lang()][code] ?? String(code);
}

const CLASSES = ["VISIT", "DIAGNOSIS", "PRESCRIPTION", "LAB_RESULT", "IMAGING", "SETTLEMENT", "FILING", "ENROLLMENT"];
const PURPOSES = ["TREATMENT", "RESEARCH", "UNDERWRITING"];

const RECORD = `query PatientRecord {
  me {
    personId name insuredRegions
    cloudRecord {
      enrollments(first: 20) { nodes { enrollmentId insuranceType poolingRegion beginDate endDate status accountBalance } }
      visits(first: 60) { nodes { visitId visitType beginDate endDate diagnosisCodes diagnosisText treatmentRegion crossRegion
        institution { name region } settlement { settlementId total }
        prescriptions { prescriptionId issuedAt reviewStatus items { drugName quantity unit } purchases { purchaseId purchasedAt } } } }
      drugPurchases(first: 30) { nodes { purchaseId purchasedAt pharmacyCode total fundPay accountPay cashPay items { drugName quantity unit } } }
      settlements(first: 60) { nodes { settlementId visitId settledAt total fundPay accountPay cashPay crossProvince insuredRegion treatmentRegion institution { name } } }
      filings(first: 20) { nodes { filingId filedAt insuredRegion destination category channel status validFrom validUntil } }
      testResults(first: 40) { nodes { resultId category itemName value unit flag modality bodyPart impression reportedAt
        performingInstitution { name level region } recognition { recognized reason validUntil } } }
    }
  }
}`;
const CONSENTS = `query MyConsents { myConsents(first: 50) { nodes { consentId grantee dataClasses purpose validFrom validUntil status revokedAt granteeInstitution { name } } } }`;
const ACCESS = `query MyAccessLog { myAccessLog(first: 30) { nodes { index time purpose outcome breakGlass principal { role org institution { name } } } } }`;
const GRANT = `mutation Grant($key: String!, $input: GrantConsentInput!) { grantConsent(idempotencyKey: $key, input: $input) { consent { consentId status } } }`;
const REVOKE = `mutation Revoke($key: String!, $id: ID!) { revokeConsent(idempotencyKey: $key, consentId: $id) { consent { consentId status } } }`;

// The names of the record's codes, from the API's own code list (not a list of the page's).
const CODES = `query Codes($dx: [String!]!, $places: [String!]!) {
  dx: codes(kind: DIAGNOSIS, codes: $dx) { code label }
  places: codes(kind: REGION, codes: $places) { code label } }`;

let state = { record: null, errors: [], consents: [], access: [], names: { dx: {}, places: {} } };

function named(kind, code) {
  return state.names[kind][code] ?? "";
}

async function loadNames(record) {
  const visits = nodes(record?.visits);
  const dx = [...new Set(visits.flatMap((v) => v.diagnosisCodes || []))].slice(0, 100);
  const places = [...new Set(visits.map((v) => v.treatmentRegion).filter(Boolean))].slice(0, 100);
  if (!dx.length && !places.length) return;
  const { data } = await gql(CODES, { dx, places });
  for (const kind of ["dx", "places"]) {
    state.names[kind] = Object.fromEntries((data?.[kind] || []).filter((c) => c.label).map((c) => [c.code, c.label]));
  }
}

function nodes(connection) {
  return connection?.nodes || [];
}

function chip(text, kind = "") {
  return h("span", { class: `chip ${kind}` }, text);
}

function split(s) {
  return h("dl", { class: "split" },
    h("dt", {}, t("total")), h("dd", {}, yuan(s.total)),
    h("dt", {}, t("fund")), h("dd", {}, yuan(s.fundPay)),
    h("dt", {}, t("account")), h("dd", {}, yuan(s.accountPay)),
    h("dt", {}, t("cash")), h("dd", {}, yuan(s.cashPay)));
}

function timelineItems(record) {
  const items = [];
  for (const e of nodes(record.enrollments)) {
    items.push({ at: e.beginDate, region: e.poolingRegion, kind: "enrollment",
      body: [h("p", {}, `${label(e.insuranceType)} · ${t("status")}: ${label(e.status)}`),
        h("p", {}, `${t("valid")} ${e.beginDate ?? ""} – ${e.endDate ?? ""}`)] });
  }
  for (const v of nodes(record.visits)) {
    const rx = (v.prescriptions || []).map((p) => h("li", {}, `${t("prescription")} ${when(p.issuedAt)} (${label(p.reviewStatus)}): `,
      (p.items || []).map((i) => `${i.drugName} ×${i.quantity}${i.unit}`).join("、"),
      (p.purchases || []).length ? [" ", chip(`${t("dispensed")} ${when(p.purchases[0].purchasedAt)}`, "ok")] : null));
    const dx = (v.diagnosisCodes || []).map((c) => `${c} ${named("dx", c)}`.trim()).join("、");
    const known = (v.diagnosisCodes || []).map((c) => named("dx", c));
    const text = v.diagnosisText && !known.includes(v.diagnosisText) ? " · " + v.diagnosisText : "";
    items.push({ at: v.beginDate, region: v.treatmentRegion, kind: "visit", cross: v.crossRegion,
      body: [h("p", {}, `${v.institution?.name ?? ""} · ${label(v.visitType)}${named("places", v.treatmentRegion) ? " · " + named("places", v.treatmentRegion) : ""} `,
        v.settlement ? chip(`${t("settledAs")} ${yuan(v.settlement.total)}`, "ok") : chip(t("notSettled"))),
        v.diagnosisCodes ? h("p", {}, `${t("diagnoses")}: ${dx}${text}`) : null,
        rx.length ? h("ul", { class: "sub" }, rx) : null] });
  }
  for (const p of nodes(record.drugPurchases)) {
    items.push({ at: p.purchasedAt, region: p.pharmacyCode?.slice(1, 7), kind: "purchase",
      body: [h("p", {}, (p.items || []).map((i) => `${i.drugName} ×${i.quantity}${i.unit}`).join("、")), split(p)] });
  }
  for (const s of nodes(record.settlements)) {
    items.push({ at: s.settledAt, region: s.treatmentRegion, kind: "settlement", cross: s.crossProvince,
      body: [h("p", {}, s.institution?.name ?? ""), split(s)] });
  }
  for (const f of nodes(record.filings)) {
    items.push({ at: f.filedAt, region: f.insuredRegion, kind: "filing",
      body: [h("p", {}, `${t("destination")}: ${province(f.destination)} · ${t("category")}: ${label(f.category)} · ${label(f.channel)} · ${label(f.status)}`),
        h("p", {}, `${t("valid")} ${f.validFrom ?? ""} – ${f.validUntil ?? ""}`)] });
  }
  return items.sort((a, b) => String(b.at).localeCompare(String(a.at)));
}

function renderTimeline(record) {
  clear(document.getElementById("timeline-list"), timelineItems(record).map((item) =>
    h("li", { class: `event ${item.kind}` },
      h("h3", {}, h("span", { class: "kind" }, t(item.kind)), " ", h("time", {}, when(item.at) || item.at || ""),
        " ", chip(province(item.region), "region"), item.cross ? chip(t("crossProvince"), "warn") : null),
      item.body)));
}

function renderResults(record) {
  clear(document.getElementById("results-list"), nodes(record.testResults).map((r) => {
    const reason = r.recognition?.reason;
    return h("li", { class: "card" },
      h("h3", {}, r.itemName || r.modality || label(r.category), " ",
        reason ? chip(t(reason), r.recognition.recognized ? "ok" : "warn") : null),
      h("p", {}, r.value != null ? `${r.value} ${r.unit ?? ""} ${r.flag && r.flag !== "N" ? "(" + label(r.flag) + ")" : ""}` : `${r.bodyPart ?? ""} ${r.impression ?? ""}`),
      h("p", { class: "muted" }, `${t("performedBy")}: ${r.performingInstitution?.name ?? ""} (${label(r.performingInstitution?.level)}, ${province(r.performingInstitution?.region)}) · ${when(r.reportedAt)}`));
  }));
}

function renderConsents() {
  const list = document.getElementById("consent-list");
  if (!state.consents.length) return clear(list, h("li", { class: "muted" }, t("noConsents")));
  clear(list, state.consents.map((c) => h("li", { class: "card consent", "data-consent": c.consentId },
    h("h3", {}, c.granteeInstitution?.name || c.grantee, " ", chip(t(c.status === "EXPIRED" ? "EXPIRED_CONSENT" : c.status), c.status === "ACTIVE" ? "ok" : "")),
    h("p", {}, `${c.dataClasses.map(t).join("、")} · ${t(c.purpose)}`),
    h("p", { class: "muted" }, `${when(c.validFrom)} – ${when(c.validUntil)}`),
    c.status === "ACTIVE" || c.status === "PENDING"
      ? h("button", { type: "button", onclick: () => revoke(c.consentId) }, t("revoke")) : null)));
}

function renderAccess() {
  const list = document.getElementById("access-list");
  if (!state.access.length) return clear(list, h("li", { class: "muted" }, t("noAccess")));
  clear(list, state.access.map((e) => h("li", { class: `card access${e.breakGlass ? " glass" : ""}` },
    h("h3", {}, e.principal?.institution?.name || province(e.principal?.org) || e.principal?.org || "",
      " ", e.breakGlass ? chip(t("breakGlass"), "danger") : null),
    h("p", {}, `${t(e.principal?.role)} · ${t(e.purpose === "SETTLEMENT" ? "SETTLEMENT_P" : e.purpose)} · ${t(e.outcome)}`),
    h("p", { class: "muted" }, h("time", {}, when(e.time))))));
}

function renderForm() {
  clear(document.getElementById("classes"), h("legend", {}, t("dataClasses")),
    CLASSES.map((c) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "class", value: c }), t(c))));
  clear(document.getElementById("purpose"), PURPOSES.map((p) => h("option", { value: p }, t(p))));
}

function render() {
  translate(STRINGS);
  renderForm();
  const me = state.record;
  if (me) {
    document.getElementById("greeting").textContent = t("hello") + (me.name ?? "");
    document.getElementById("summary").textContent = t("insuredIn") + (me.insuredRegions || []).map(province).join("、");
    renderTimeline(me.cloudRecord);
    renderResults(me.cloudRecord);
  }
  renderConsents();
  renderAccess();
  const status = document.getElementById("status");
  status.textContent = state.errors.length ? t("partial") + state.errors.map((e) => (e.path || []).join(".")).join("; ") : "";
}

async function loadConsents() {
  state.consents = nodes((await gql(CONSENTS)).data.myConsents);
}

async function loadAccess() {
  state.access = nodes((await gql(ACCESS)).data.myAccessLog);
}

async function revoke(id) {
  await gql(REVOKE, { key: randomKey(), id });
  await loadConsents();
  render();
}

async function grant(event) {
  event.preventDefault();
  const form = event.target;
  const classes = [...form.querySelectorAll("input[name=class]:checked")].map((i) => i.value);
  const until = new Date(form.until.value + "T23:59:59+08:00").toISOString();
  const { errors } = await gql(GRANT, { key: randomKey(), input: {
    grantee: form.grantee.value.trim(), dataClasses: classes, purpose: form.purpose.value, validUntil: until,
  } });
  document.getElementById("status").textContent = errors.length ? errors.map((e) => e.message).join("; ") : t("granted");
  await loadConsents();
  renderConsents();
}

async function main() {
  if (!requireSignIn()) return;
  languageSwitch(document.getElementById("lang"), render);
  document.getElementById("signout").addEventListener("click", signOut);
  document.getElementById("grant").addEventListener("submit", (e) => grant(e).catch(show));
  document.getElementById("refresh-access").addEventListener("click", () => loadAccess().then(render).catch(show));
  translate(STRINGS);
  document.getElementById("status").textContent = t("loading");
  const { data, errors } = await gql(RECORD);
  state.record = data.me;
  state.errors = errors;
  await loadNames(data.me?.cloudRecord).catch(() => {});  // names are a help, not the record
  await loadConsents();
  await loadAccess();
  render();
  document.body.dataset.ready = "true";
}

function show(err) {
  document.getElementById("status").textContent = err.message;
}

main().catch(show);
