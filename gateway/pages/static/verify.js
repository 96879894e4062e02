// The audit log checked in the browser, trusting nothing the server says but the bytes it
// serves: a C2SP signed-note checkpoint verified with the security team's own verifier key
// (WebCrypto Ed25519), and an event's RFC 9162 inclusion proof recomputed with SHA-256 from
// the logged entry itself up to the signed root. Each check throws a VerifyError naming
// what failed.
"use strict";

export class VerifyError extends Error {}

const enc = new TextEncoder();

function unb64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function same(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function hex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// "<name>+<hex key hash>+<base64(0x01 || Ed25519 public key)>"
export async function parseVerifierKey(text) {
  const trimmed = text.trim();
  const first = trimmed.indexOf("+");
  const second = trimmed.indexOf("+", first + 1);
  if (first < 1 || second !== first + 9) throw new VerifyError("verifierKeyMalformed");
  const name = trimmed.slice(0, first);
  const hash = trimmed.slice(first + 1, second);
  let data;
  try {
    data = unb64(trimmed.slice(second + 1));
  } catch (_) {
    throw new VerifyError("verifierKeyMalformed");
  }
  if (data.length !== 33 || data[0] !== 0x01) throw new VerifyError("verifierKeyNotEd25519");
  const id = (await sha256(concat(enc.encode(name + "\n"), data))).slice(0, 4);
  if (hex(id) !== hash) throw new VerifyError("verifierKeyMalformed");
  const key = await crypto.subtle.importKey("raw", data.slice(1), { name: "Ed25519" }, false, ["verify"]);
  return { name, id, key };
}

// The checkpoint (origin, size, root) of a signed note, if `verifier` signed it.
export async function openCheckpoint(note, verifier) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new VerifyError("noteMalformed");
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2).split("\n").filter((l) => l);
  let verified = false;
  for (const line of lines) {
    if (!line.startsWith("\u2014 ")) throw new VerifyError("noteMalformed");
    const [name, blob] = line.slice(2).split(" ");
    const raw = unb64(blob);
    if (name !== verifier.name || !same(raw.slice(0, 4), verifier.id)) continue;
    if (!(await crypto.subtle.verify({ name: "Ed25519" }, verifier.key, raw.slice(4), enc.encode(text)))) {
      throw new VerifyError("signatureBad");
    }
    verified = true;
  }
  if (!verified) throw new VerifyError("signatureMissing");
  const [origin, size, root] = text.slice(0, -1).split("\n");
  const rootBytes = unb64(root);
  if (!/^(0|[1-9][0-9]*)$/.test(size) || rootBytes.length !== 32) throw new VerifyError("noteMalformed");
  return { origin, size: BigInt(size), root: rootBytes };
}

// RFC 9162 §2.1.3.2: the root an inclusion path leads to from `leaf`.
async function rootFromPath(index, size, leaf, path) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn > sn) throw new VerifyError("proofBad");
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw new VerifyError("proofBad");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(concat(Uint8Array.of(1), p, r));
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await sha256(concat(Uint8Array.of(1), r, p));
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerifyError("proofBad");
  return r;
}

// Checks that `entry` (the event as logged) is leaf `proof.index` of the tree the signed
// checkpoint commits to. Returns the parsed entry.
export async function verifyInclusion(checkpoint, proof) {
  if (BigInt(proof.size) !== checkpoint.size) throw new VerifyError("sizeMismatch");
  const entryBytes = enc.encode(proof.entry);
  const leaf = await sha256(concat(Uint8Array.of(0), entryBytes));
  if (!same(leaf, unb64(proof.leafHash))) throw new VerifyError("leafBad");
  const root = await rootFromPath(proof.index, proof.size, leaf, proof.path.map(unb64));
  if (!same(root, checkpoint.root)) throw new VerifyError("rootBad");
  const entry = JSON.parse(proof.entry);
  if (entry.index !== proof.index) throw new VerifyError("leafBad");
  return entry;
}
