// Shared by medfed's pages: sign-in (OpenID Connect authorization code + PKCE, or a demo
// token in dev mode), the GraphQL client, the language switch and small DOM helpers.
// The access token lives in sessionStorage only (this tab, gone when it closes): never in
// localStorage and never in a cookie. Everything shown is set as text, never as HTML.
"use strict";

const TOKEN_KEY = "medfed.token";
const FLOW_KEY = "medfed.oidc";
const LANG_KEY = "medfed.lang";

export const PROVINCES = {
  "110000": ["北京市", "Beijing"], "120000": ["天津市", "Tianjin"], "130000": ["河北省", "Hebei"],
  "140000": ["山西省", "Shanxi"], "150000": ["内蒙古自治区", "Inner Mongolia"],
  "210000": ["辽宁省", "Liaoning"], "220000": ["吉林省", "Jilin"],
  "230000": ["黑龙江省", "Heilongjiang"], "310000": ["上海市", "Shanghai"],
  "320000": ["江苏省", "Jiangsu"], "330000": ["浙江省", "Zhejiang"], "340000": ["安徽省", "Anhui"],
  "350000": ["福建省", "Fujian"], "360000": ["江西省", "Jiangxi"], "370000": ["山东省", "Shandong"],
  "410000": ["河南省", "Henan"], "420000": ["湖北省", "Hubei"], "430000": ["湖南省", "Hunan"],
  "440000": ["广东省", "Guangdong"], "450000": ["广西壮族自治区", "Guangxi"],
  "460000": ["海南省", "Hainan"], "500000": ["重庆市", "Chongqing"], "510000": ["四川省", "Sichuan"],
  "520000": ["贵州省", "Guizhou"], "530000": ["云南省", "Yunnan"], "540000": ["西藏自治区", "Tibet"],
  "610000": ["陕西省", "Shaanxi"], "620000": ["甘肃省", "Gansu"], "630000": ["青海省", "Qinghai"],
  "640000": ["宁夏回族自治区", "Ningxia"], "650000": ["新疆维吾尔自治区", "Xinjiang"],
  "100000": ["国家", "National"],
};

let strings = { zh: {}, en: {} };

export function lang() {
  return sessionStorage.getItem(LANG_KEY) === "en" ? "en" : "zh";
}

export function t(key) {
  return strings[lang()][key] ?? strings.zh[key] ?? key;
}

export function province(code) {
  if (!code) return "";
  const found = PROVINCES[String(code).slice(0, 2) + "0000"] || PROVINCES[code];
  return found ? found[lang() === "en" ? 1 : 0] : String(code);
}

// Elements: h("p", {class: "x"}, "text", child). Strings become text nodes.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value == null) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c != null && c !== false));
}

// Static text of the page: every element with data-i18n="key" (and data-i18n-placeholder).
export function translate(dictionary) {
  strings = dictionary;
  document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
}

export function languageSwitch(button, rerender) {
  button.addEventListener("click", () => {
    sessionStorage.setItem(LANG_KEY, lang() === "en" ? "zh" : "en");
    rerender();
  });
}

export function when(value) {
  if (!value) return "";
  // A calendar day (a visit's date) is shown as that day, not as its midnight in some zone.
  if (/^\d{4}-\d{2}-\d{2}$/.test(String(value))) return String(value).replaceAll("-", "/");
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(lang() === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    timeZone: "Asia/Shanghai",
  });
}

export function yuan(value) {
  return value == null ? "—" : `¥${Number(value).toFixed(2)}`;
}

// -- the session -----------------------------------------------------------------------------

export function token() {
  const raw = sessionStorage.getItem(TOKEN_KEY);
  if (!raw) return null;
  try {
    const { value, expires } = JSON.parse(raw);
    if (Date.now() < expires) return value;
  } catch (_) { /* a damaged entry is no session */ }
  sessionStorage.removeItem(TOKEN_KEY);
  return null;
}

export function keepToken(value, seconds) {
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ value, expires: Date.now() + seconds * 1000 }));
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.assign("/signin?next=" + encodeURIComponent(location.pathname));
}

// The claims of our own token, to greet the user and choose what to show. Not a security
// decision: the gateway verifies the token on every request.
export function claims() {
  const value = token();
  if (!value) return null;
  const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

export function requireSignIn() {
  if (token()) return true;
  location.replace("/signin?next=" + encodeURIComponent(location.pathname));
  return false;
}

export async function config() {
  return (await fetch("/pages/config.json")).json();
}

// -- OpenID Connect: authorization code with PKCE (RFC 7636, S256) -----------------------------

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(n) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function discover(oidc) {
  const answer = await fetch(oidc.issuer.replace(/\/$/, "") + "/.well-known/openid-configuration");
  const found = await answer.json();
  if (found.issuer !== oidc.issuer) throw new Error("the discovery document names another issuer");
  return found;
}

export async function startSignIn(oidc, next) {
  const found = await discover(oidc);
  const verifier = randomText(32);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = randomText(16);
  const redirect = location.origin + "/signin";
  sessionStorage.setItem(FLOW_KEY, JSON.stringify({
    verifier, state, next, redirect, tokenEndpoint: found.token_endpoint,
  }));
  const url = new URL(found.authorization_endpoint);
  const params = {
    response_type: "code", client_id: oidc.clientId, redirect_uri: redirect, scope: oidc.scope,
    state, code_challenge: challenge, code_challenge_method: "S256",
  };
  if (oidc.resource) params.resource = oidc.resource;
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  location.assign(url.toString());
}

// On /signin?code=…&state=…: exchange the code, keep the access token, go on.
export async function finishSignIn(oidc) {
  const query = new URLSearchParams(location.search);
  const flow = JSON.parse(sessionStorage.getItem(FLOW_KEY) || "null");
  sessionStorage.removeItem(FLOW_KEY);
  history.replaceState(null, "", "/signin");  // the code leaves the address bar and history
  if (query.get("error")) throw new Error(query.get("error_description") || query.get("error"));
  if (!flow || query.get("state") !== flow.state) throw new Error("sign-in state does not match");
  const form = new URLSearchParams({
    grant_type: "authorization_code", code: query.get("code"), redirect_uri: flow.redirect,
    client_id: oidc.clientId, code_verifier: flow.verifier,
  });
  if (oidc.resource) form.set("resource", oidc.resource);
  const answer = await fetch(flow.tokenEndpoint, {
    method: "POST", body: form, headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  const body = await answer.json();
  if (!answer.ok || !body.access_token) throw new Error(body.error_description || body.error || "no token");
  keepToken(body.access_token, Number(body.expires_in) || 300);
  return flow.next;
}

// -- the API ----------------------------------------------------------------------------------

export class ApiError extends Error {}

export async function gql(query, variables = {}) {
  const value = token();
  if (!value) {
    signOut();
    throw new ApiError(t("signedOut"));
  }
  const answer = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + value },
    body: JSON.stringify({ query, variables }),
  });
  if (answer.status === 401) {
    signOut();
    throw new ApiError(t("signedOut"));
  }
  const body = await answer.json();
  if (!body.data && body.errors) throw new ApiError(body.errors.map((e) => e.message).join("; "));
  return { data: body.data, errors: body.errors || [] };
}

export function randomKey() {
  return randomText(18).replace(/[^A-Za-z0-9_-]/g, "_");
}
