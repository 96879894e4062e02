// /signin: the OpenID Connect sign-in (and its callback), or in dev mode a demo choice.
import {
  clear, config, finishSignIn, h, keepToken, languageSwitch, province, startSignIn, t, translate,
} from "/pages/static/common.js";

const STRINGS = {
  zh: {
    brand: "医保数据平台", otherLanguage: "English", signInTitle: "登录",
    providerTitle: "使用身份提供方登录", signInWithProvider: "通过身份提供方登录",
    demoTitle: "演示账号（仅开发模式）", demoHint: "选择一位演示参保人或一个角色。",
    asPerson: "以参保人身份查看", insuredIn: "参保地", working: "正在登录…",
    failed: "登录失败：", clinician: "医生（H33010600001）", auditor: "安全审计员（国家）",
    insurance_agency: "医保经办机构（浙江）", settlement_center: "结算中心（国家）",
    signedOut: "请重新登录",
  },
  en: {
    brand: "Medical insurance data", otherLanguage: "中文", signInTitle: "Sign in",
    providerTitle: "Sign in with the identity provider", signInWithProvider: "Sign in with the identity provider",
    demoTitle: "Demo accounts (dev mode only)", demoHint: "Pick a demo insured person or a role.",
    asPerson: "View as insured person", insuredIn: "insured in", working: "Signing in…",
    failed: "Sign-in failed: ", clinician: "Clinician (H33010600001)", auditor: "Security auditor (national)",
    insurance_agency: "Insurance agency (Zhejiang)", settlement_center: "Settlement centre (national)",
    signedOut: "Please sign in again",
  },
};

const query = new URLSearchParams(location.search);
const next = sessionStorage.getItem("medfed.next") || "/patient";
if (query.get("next")) sessionStorage.setItem("medfed.next", query.get("next"));
const status = () => document.getElementById("status");
let settings = null;
let demo = null;

function go(path) {
  sessionStorage.removeItem("medfed.next");
  location.replace(path && path.startsWith("/") && !path.startsWith("//") ? path : "/patient");
}

async function demoToken(choice) {
  status().textContent = t("working");
  const answer = await fetch("/pages/demo/token", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(choice),
  });
  const body = await answer.json();
  if (!answer.ok) {
    status().textContent = t("failed") + body.error;
    return;
  }
  keepToken(body.token, 3000);
  go(choice.role === "patient" ? "/patient" : choice.role === "auditor" ? "/console" : query.get("next") || next);
}

function render() {
  translate(STRINGS);
  if (settings?.oidc) document.getElementById("provider").hidden = false;
  if (demo) {
    document.getElementById("demo").hidden = false;
    clear(document.getElementById("demo-people"), demo.people.map((p) => h("li", {},
      h("button", { type: "button", class: "choice", onclick: () => demoToken({ role: "patient", person: p.personId }) },
        `${t("asPerson")}: ${p.name}`, h("span", { class: "muted" }, ` · ${t("insuredIn")} ${p.insuredIn.map(province).join("、")}`)))));
    clear(document.getElementById("demo-roles"), Object.keys(demo.roles).map((role) => h("li", {},
      h("button", { type: "button", class: "choice", onclick: () => demoToken({ role }) }, t(role)))));
  }
}

async function main() {
  languageSwitch(document.getElementById("lang"), render);
  settings = await config();
  if (settings.oidc && query.get("state")) {
    render();
    status().textContent = t("working");
    try {
      go(await finishSignIn(settings.oidc));
    } catch (err) {
      status().textContent = t("failed") + err.message;
    }
    return;
  }
  document.getElementById("oidc").addEventListener("click", () =>
    startSignIn(settings.oidc, query.get("next") || next).catch((err) => {
      status().textContent = t("failed") + err.message;
    }));
  if (settings.demo) demo = await (await fetch("/pages/demo/people")).json();
  render();
}

main();
