// /console: the security team's audit console. Searches auditEvents, shows an event, lists
// the alerts and handles them (handleAlert), shows the region's risk warnings and the open-data
// partners' privacy budgets, and verifies an event's inclusion in the signed log in the browser.
import {
  clear, gql, h, languageSwitch, province, randomKey, requireSignIn, signOut, t, translate, when,
} from "/pages/static/common.js";
import { openCheckpoint, parseVerifierKey, verifyInclusion, VerifyError } from "/pages/static/verify.js";

const STRINGS = {
  zh: {
    title: "安全审计控制台", otherLanguage: "English", signOut: "退出", skip: "跳到正文",
    sections: "页面导航", search: "审计查询", alerts: "告警", verifyTitle: "日志验证",
    person: "参保人 personId", principal: "访问者 sub", org: "机构编码", purpose: "用途",
    outcome: "结果", fieldClass: "数据类别", from: "起始时间", to: "截止时间",
    breakGlassOnly: "仅紧急访问", find: "查询", glassReview: "紧急访问复核", eventsCaption: "审计事件", index: "序号",
    time: "时间", who: "访问者", action: "操作", more: "更多", detail: "事件详情",
    show: "详情", verify: "验证", any: "（任意）", breakGlass: "紧急访问",
    verifyHint: "在浏览器中验证签名检查点和事件的包含证明，不依赖服务器的结论。",
    verifierKey: "审计日志验证公钥（audit-log.pub）", verifying: "正在验证…",
    verified: "验证通过：事件 {i} 包含在已签名的检查点（大小 {n}）中。",
    failed: "验证失败：", noKey: "请先填写验证公钥", read: "读取", masked: "掩码",
    denied: "拒绝", sources: "数据源", requestId: "请求编号", operation: "操作名",
    verifierKeyMalformed: "验证公钥格式错误", verifierKeyNotEd25519: "验证公钥不是 Ed25519 公钥",
    noteMalformed: "检查点格式错误", signatureBad: "检查点签名无效（已被篡改或非此密钥签名）",
    signatureMissing: "检查点没有此密钥的签名", sizeMismatch: "证明与检查点的大小不一致",
    leafBad: "事件内容与日志叶哈希不符：日志已被篡改", rootBad: "包含证明与签名的根哈希不符：日志已被篡改",
    proofBad: "包含证明格式错误", noAlerts: "暂无告警", rule: "规则", signedOut: "请重新登录",
    OK: "成功", DENIED: "拒绝", PARTIAL: "部分", ERROR: "出错", UNAUTHENTICATED: "未认证",
    INTENT: "写入意图", APPLIED: "已写入", NOT_APPLIED: "未写入",
    TREATMENT: "诊疗", SETTLEMENT: "结算", FUND_SUPERVISION: "基金监管", PATIENT_ACCESS: "本人查询",
    RESEARCH: "科研", UNDERWRITING: "核保", AUDIT: "审计", EMERGENCY: "紧急救治",
    warnings: "风险预警", warningsHint: "本地区的基金监管风险预警（由基金监管人员处置）。",
    noWarnings: "暂无风险预警", warningsOutOfScope: "您的审计范围不含风险预警",
    budgets: "隐私预算", budgetsHint: "本期各开放数据伙伴的差分隐私预算（ε）使用情况。",
    noBudgets: "本期尚无伙伴使用隐私预算", partner: "伙伴", period: "期间", spent: "已用 ε",
    remaining: "剩余 ε", questions: "问题数", renews: "重置时间", grade: "等级", state: "状态",
    owner: "处置人", note: "处置说明", handle: "提交", handleAs: "处置为", changed: "处置记录",
    GRADE1: "一般", GRADE2: "关注", GRADE3: "严重", OPEN: "待处置", ACKNOWLEDGED: "已确认",
    RESOLVED: "已处理（确认违规）", FALSE_POSITIVE: "误报", ACKNOWLEDGE: "确认收到",
    RESOLVE: "处理完毕", noteNeeded: "请填写处置说明", handled: "已处置告警 #{id}",
    BREAK_GLASS: "紧急访问", VOLUME_SPIKE: "访问量突增", PROBING: "试探性访问",
    OFF_HOURS: "非工作时间访问", NO_RELATION: "无关联访问",
  },
  en: {
    title: "Security console", otherLanguage: "中文", signOut: "Sign out", skip: "Skip to content",
    sections: "Sections", search: "Audit search", alerts: "Alerts", verifyTitle: "Log verification",
    person: "Person (personId)", principal: "Principal (sub)", org: "Organisation code",
    purpose: "Purpose", outcome: "Outcome", fieldClass: "Data class", from: "From", to: "To",
    breakGlassOnly: "Break-glass only", find: "Search", glassReview: "Break-glass review", eventsCaption: "Audit events",
    index: "Index", time: "Time", who: "Principal", action: "Action", more: "More",
    detail: "Event detail", show: "Detail", verify: "Verify", any: "(any)",
    breakGlass: "Break-glass",
    verifyHint: "Verify the signed checkpoint and an event's inclusion proof in this browser, without taking the server's word.",
    verifierKey: "Audit log verifier key (audit-log.pub)", verifying: "Verifying…",
    verified: "Verified: event {i} is in the signed checkpoint (size {n}).",
    failed: "Verification FAILED: ", noKey: "Enter the verifier key first", read: "read",
    masked: "masked", denied: "denied", sources: "Sources", requestId: "Request id",
    operation: "Operation", verifierKeyMalformed: "the verifier key is malformed",
    verifierKeyNotEd25519: "the verifier key is not an Ed25519 key",
    noteMalformed: "the checkpoint is malformed",
    signatureBad: "the checkpoint's signature is invalid (altered, or signed by another key)",
    signatureMissing: "the checkpoint has no signature by this key",
    sizeMismatch: "the proof is for another tree size than the checkpoint",
    leafBad: "the event does not hash to its leaf: the log was tampered with",
    rootBad: "the inclusion proof does not lead to the signed root: the log was tampered with",
    proofBad: "the inclusion proof is malformed", noAlerts: "No alerts", rule: "Rule",
    signedOut: "Please sign in again", OK: "OK", DENIED: "Denied", PARTIAL: "Partial",
    INTENT: "Write intent", APPLIED: "Applied", NOT_APPLIED: "Not applied",
    ERROR: "Error", UNAUTHENTICATED: "Unauthenticated", TREATMENT: "Treatment",
    SETTLEMENT: "Settlement", FUND_SUPERVISION: "Fund supervision",
    PATIENT_ACCESS: "Patient access", RESEARCH: "Research", UNDERWRITING: "Underwriting",
    AUDIT: "Audit", EMERGENCY: "Emergency",
    warnings: "Risk warnings", warningsHint: "Fund-supervision risk warnings of your region (handled by the fund supervisors).",
    noWarnings: "No risk warnings", warningsOutOfScope: "Risk warnings are outside your audit scope",
    budgets: "Privacy budgets", budgetsHint: "How much of its differential-privacy budget (ε) each open-data partner has spent this period.",
    noBudgets: "No partner has spent from its budget this period", partner: "Partner",
    period: "Period", spent: "Spent ε", remaining: "Remaining ε", questions: "Questions",
    renews: "Renews", grade: "Grade", state: "State", owner: "Owner", note: "Note",
    handle: "Submit", handleAs: "Handle as", changed: "Handled", GRADE1: "notice",
    GRADE2: "attention", GRADE3: "serious", OPEN: "Open", ACKNOWLEDGED: "Acknowledged",
    RESOLVED: "Resolved (confirmed)", FALSE_POSITIVE: "False positive", ACKNOWLEDGE: "Acknowledge",
    RESOLVE: "Resolve", noteNeeded: "Write a note first", handled: "Alert #{id} handled",
    BREAK_GLASS: "Break-glass", VOLUME_SPIKE: "Volume spike", PROBING: "Probing",
    OFF_HOURS: "Off-hours access", NO_RELATION: "Access with no relation",
  },
};

const PURPOSES = ["TREATMENT", "SETTLEMENT", "FUND_SUPERVISION", "PATIENT_ACCESS", "RESEARCH", "UNDERWRITING", "AUDIT", "EMERGENCY"];
const OUTCOMES = ["OK", "PARTIAL", "DENIED", "ERROR", "UNAUTHENTICATED", "INTENT", "APPLIED", "NOT_APPLIED"];
const FIELDS = `index time kind requestId purpose breakGlass outcome operationName
  principal { sub role org issuer institution { name } }
  persons { personId relation read { field dataClass level } masked { field dataClass level } denied { field dataClass level reason } }
  sourcesTouched sourcesFailed errorCodes`;
const EVENTS = `query Events($filter: AuditEventFilter, $after: String) {
  auditEvents(filter: $filter, first: 20, after: $after) { nodes { ${FIELDS} } pageInfo { hasNextPage endCursor } } }`;
const ALERTS = `query Alerts { auditAlerts(first: 20) { nodes { id index time rule grade state owner
  principal org personId detail changedBy changedAt note reasonCode } } }`;
const HANDLE = `mutation Handle($key: String!, $input: HandleAlertInput!) {
  handleAlert(idempotencyKey: $key, input: $input) { alert { id state } } }`;
const WARNINGS = `query Warnings { supervisionWarnings(first: 20) { nodes { warningId rule grade phase state
  owner institutionCode insuredRegion treatmentRegion settledAt foundAt detail } } }`;
const BUDGETS = `query Budgets { privacyBudgets { partner period budget spent remaining questions renewsAt } }`;
const CLOSED = ["RESOLVED", "FALSE_POSITIVE"];
const ACTIONS = ["ACKNOWLEDGE", "RESOLVE", "FALSE_POSITIVE"];
const CHECKPOINT = `query Checkpoint { auditCheckpoint { note size } }`;
const PROOF = `query Proof($index: Int!, $size: Int) { auditProof(index: $index, size: $size) { index size leafHash path entry } }`;
const VERIFIER_KEY = "medfed.verifierKey";  // a public key (what to trust), not a secret

let state = {
  events: [], cursor: null, more: false, alerts: [], detail: null, filter: {}, result: null,
  warnings: null, budgets: [],
};

function nodes(connection) {
  return connection?.nodes || [];
}

function filterOf(form) {
  const f = {};
  for (const name of ["person", "principal", "org", "purpose", "outcome", "fieldClass"]) {
    const value = form[name].value.trim();
    if (value) f[name] = value;
  }
  if (form.from.value) f.from = new Date(form.from.value).toISOString();
  if (form.to.value) f.to = new Date(form.to.value).toISOString();
  if (form.breakGlass.checked) f.breakGlass = true;
  return f;
}

function fields(list, label) {
  if (!list.length) return null;
  return h("p", {}, `${t(label)}: `, list.map((f) => `${f.field} (${f.dataClass ?? "?"}/L${f.level ?? "?"})${f.reason ? " — " + f.reason : ""}`).join(", "));
}

function renderDetail() {
  const section = document.getElementById("detail");
  const e = state.detail;
  section.hidden = !e;
  if (!e) return;
  clear(document.getElementById("detail-body"),
    h("dl", { class: "facts" },
      h("dt", {}, t("index")), h("dd", {}, String(e.index)),
      h("dt", {}, t("time")), h("dd", {}, when(e.time)),
      h("dt", {}, t("who")), h("dd", {}, `${e.principal?.sub ?? ""} · ${e.principal?.role ?? ""} · ${e.principal?.institution?.name ?? e.principal?.org ?? ""}`),
      h("dt", {}, t("purpose")), h("dd", {}, `${t(e.purpose)}${e.breakGlass ? " · " + t("breakGlass") : ""}`),
      h("dt", {}, t("outcome")), h("dd", {}, t(e.outcome)),
      h("dt", {}, t("sources")), h("dd", {}, e.sourcesTouched.join(", ") || "—"),
      h("dt", {}, t("requestId")), h("dd", { class: "mono" }, e.requestId),
      h("dt", {}, t("operation")), h("dd", {}, e.operationName ?? "—")),
    e.persons.map((p) => h("div", { class: "card" }, h("h3", { class: "mono" }, p.personId ?? ""),
      fields(p.read, "read"), fields(p.masked, "masked"), fields(p.denied, "denied"))),
    h("button", { type: "button", class: "primary", id: "verify-event", onclick: () => verifyEvent(e) }, t("verify")));
}

function renderEvents() {
  clear(document.getElementById("events-body"), state.events.map((e) => h("tr", { "data-index": e.index, class: e.breakGlass ? "glass" : "" },
    h("td", {}, String(e.index)), h("td", {}, when(e.time)),
    h("td", {}, `${e.principal?.institution?.name ?? province(e.principal?.org) ?? ""} ${e.principal?.role ?? e.kind}`),
    h("td", {}, `${t(e.purpose) ?? ""}${e.breakGlass ? " · " + t("breakGlass") : ""}`),
    h("td", {}, t(e.outcome)),
    h("td", {}, h("button", { type: "button", onclick: () => { state.detail = e; renderDetail(); document.getElementById("detail").scrollIntoView(); } }, t("show"))))));
  document.getElementById("more").hidden = !state.more;
}

function gradeChip(grade) {
  return h("span", { class: `chip ${grade >= 3 ? "danger" : grade === 2 ? "warn" : ""}` }, `${t("grade")} ${grade} · ${t("GRADE" + grade)}`);
}

function stateChip(value) {
  return h("span", { class: `chip state ${CLOSED.includes(value) ? "ok" : "warn"}` }, t(value));
}

// The handling form of an alert that is not closed: an action and a note (kept encrypted).
function handleForm(a) {
  const note = `note-${a.id}`;
  const action = `action-${a.id}`;
  return h("form", { class: "form handle", "data-alert": a.id, onsubmit: (e) => { e.preventDefault(); handle(a, e.target).catch(show); } },
    h("label", { for: action }, t("handleAs")),
    h("select", { id: action, name: "action" }, ACTIONS.map((v) => h("option", { value: v }, t(v)))),
    h("label", { for: note }, t("note")),
    h("textarea", { id: note, name: "note", rows: "2", maxlength: "2000", required: "" }),
    h("button", { type: "submit", class: "primary" }, t("handle")));
}

function renderAlerts() {
  const list = document.getElementById("alerts-list");
  if (!state.alerts.length) return clear(list, h("li", { class: "muted" }, t("noAlerts")));
  clear(list, state.alerts.map((a) => h("li", { class: "card alert", "data-alert": a.id, "data-state": a.state },
    h("h3", {}, `${t("rule")}: ${t(a.rule)} `, gradeChip(a.grade), " ", stateChip(a.state)),
    h("p", {}, a.detail),
    h("p", { class: "muted" }, `${when(a.time)} · ${a.principal ?? ""} · ${a.org ?? ""} · #${a.index}`),
    a.changedAt ? h("p", { class: "muted" }, `${t("changed")}: ${when(a.changedAt)} · ${a.changedBy ?? ""}${a.note ? " · " + a.note : ""}`) : null,
    CLOSED.includes(a.state) ? null : handleForm(a))));
}

function renderWarnings() {
  const list = document.getElementById("warnings-list");
  if (state.warnings === null) return clear(list, h("li", { class: "muted" }, t("warningsOutOfScope")));
  if (!state.warnings.length) return clear(list, h("li", { class: "muted" }, t("noWarnings")));
  clear(list, state.warnings.map((w) => h("li", { class: "card warning", "data-warning": w.warningId },
    h("h3", {}, `${w.rule} `, gradeChip(w.grade), " ", stateChip(w.state)),
    h("p", {}, w.detail),
    h("p", { class: "muted" }, `${when(w.foundAt)} · ${w.institutionCode ?? ""} · ${province(w.insuredRegion)} → ${province(w.treatmentRegion)}${w.owner ? " · " + t("owner") + " " + w.owner : ""}`))));
}

function renderBudgets() {
  const body = document.getElementById("budgets-body");
  if (!state.budgets.length) return clear(body, h("tr", {}, h("td", { colspan: "6", class: "muted" }, t("noBudgets"))));
  clear(body, state.budgets.map((b) => h("tr", { "data-partner": b.partner },
    h("td", { class: "mono" }, b.partner), h("td", {}, b.period),
    h("td", {}, h("meter", { min: "0", max: String(b.budget), value: String(b.spent), "aria-label": `${t("spent")} ${b.spent} / ${b.budget}` }), ` ${b.spent} / ${b.budget}`),
    h("td", {}, String(b.remaining)), h("td", {}, String(b.questions)), h("td", {}, when(b.renewsAt)))));
}

async function handle(alert, form) {
  const note = form.note.value.trim();
  if (!note) {
    document.getElementById("status").textContent = t("noteNeeded");
    return;
  }
  const input = { alertId: alert.id, action: form.action.value, note };
  await gql(HANDLE, { key: randomKey(), input });
  document.getElementById("status").textContent = t("handled").replace("{id}", alert.id);
  await loadAlerts();
}

async function loadAlerts() {
  state.alerts = nodes((await gql(ALERTS)).data.auditAlerts);
  renderAlerts();
}

async function loadOversight() {
  // Warnings are open to an auditor of a region; another auditor is told so, not shown an error.
  const warnings = await gql(WARNINGS).catch(() => null);
  state.warnings = warnings?.data?.supervisionWarnings ? nodes(warnings.data.supervisionWarnings) : null;
  state.budgets = (await gql(BUDGETS)).data.privacyBudgets;
  renderWarnings();
  renderBudgets();
}

function renderResult() {
  const box = document.getElementById("verify-result");
  const r = state.result;
  if (!r) return clear(box);
  box.className = r.ok ? "result ok" : "result bad";
  box.textContent = r.ok ? t("verified").replace("{i}", r.index).replace("{n}", r.size) : t("failed") + t(r.reason);
}

function renderSelects() {
  for (const [id, values] of [["f-purpose", PURPOSES], ["f-outcome", OUTCOMES]]) {
    const select = document.getElementById(id);
    const chosen = select.value;
    clear(select, h("option", { value: "" }, t("any")), values.map((v) => h("option", { value: v }, t(v))));
    select.value = chosen;
  }
}

function render() {
  translate(STRINGS);
  renderSelects();
  renderEvents();
  renderDetail();
  renderAlerts();
  renderWarnings();
  renderBudgets();
  renderResult();
}

async function search(after = null) {
  const { data } = await gql(EVENTS, { filter: state.filter, after });
  const found = data.auditEvents;
  state.events = after ? [...state.events, ...nodes(found)] : nodes(found);
  state.more = found.pageInfo.hasNextPage;
  state.cursor = found.pageInfo.endCursor;
  renderEvents();
  const table = document.getElementById("events");
  table.dataset.searches = String(Number(table.dataset.searches || 0) + 1);
}

async function verifyEvent(event) {
  const keyText = document.getElementById("verifier").value;
  state.result = null;
  const box = document.getElementById("verify-result");
  box.className = "result";
  if (!keyText.trim()) {
    box.textContent = t("noKey");
    return;
  }
  localStorage.setItem(VERIFIER_KEY, keyText.trim());
  box.textContent = t("verifying");
  try {
    const verifier = await parseVerifierKey(keyText);
    const checkpoint = await openCheckpoint((await gql(CHECKPOINT)).data.auditCheckpoint.note, verifier);
    const proof = (await gql(PROOF, { index: event.index, size: Number(checkpoint.size) })).data.auditProof;
    const entry = await verifyInclusion(checkpoint, proof);
    if (entry.event.requestId !== event.requestId) throw new VerifyError("leafBad");
    state.result = { ok: true, index: event.index, size: String(checkpoint.size) };
  } catch (err) {
    state.result = { ok: false, reason: err instanceof VerifyError ? err.message : "proofBad" };
  }
  renderResult();
}

async function main() {
  if (!requireSignIn()) return;
  languageSwitch(document.getElementById("lang"), render);
  document.getElementById("signout").addEventListener("click", signOut);
  document.getElementById("verifier").value = localStorage.getItem(VERIFIER_KEY) || "";
  document.getElementById("filter").addEventListener("submit", (e) => {
    e.preventDefault();
    state.filter = filterOf(e.target);
    search().catch(show);
  });
  // Break-glass review: every emergency access in scope, newest first.
  document.getElementById("glass-review").addEventListener("click", () => {
    const form = document.getElementById("filter");
    form.reset();
    form.breakGlass.checked = true;
    state.filter = { breakGlass: true };
    search().catch(show);
  });
  document.getElementById("more").addEventListener("click", () => search(state.cursor).catch(show));
  render();
  await search();
  await loadAlerts();
  await loadOversight();
  render();
  document.body.dataset.ready = "true";
}

function show(err) {
  document.getElementById("status").textContent = err.message;
}

main().catch(show);
