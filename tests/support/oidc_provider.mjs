// A real OpenID Connect provider (npm oidc-provider) for the browser tests: it serves
// discovery and its JWKS, signs its users in through its own login pages, and issues JWT
// access tokens for medfed (RFC 8707 resource indicator, audience "medfed") that carry
// medfed's claims for the account. Configured by the JSON file named on the command line:
// {port, issuer, clientId, redirectUris, resource, jwk, accounts: {login: claims}}.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));

const provider = new Provider(cfg.issuer, {
  clients: [{
    client_id: cfg.clientId,
    token_endpoint_auth_method: "none",            // a public client: PKCE instead of a secret
    redirect_uris: cfg.redirectUris,
    grant_types: ["authorization_code"],
    response_types: ["code"],
    id_token_signed_response_alg: "ES256",
  }],
  jwks: { keys: [cfg.jwk] },
  scopes: ["openid", "api"],
  findAccount: async (_ctx, sub) => cfg.accounts[sub] && {
    accountId: sub,
    claims: async () => ({ sub }),
  },
  features: {
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => cfg.resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== cfg.resource) throw new Error("unknown resource");
        return {
          scope: "api",
          audience: "medfed",
          accessTokenTTL: 3600,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "ES256" } },
        };
      },
    },
  },
  // The account's medfed claims (role, org, purposes, person, mdtrt_cert_type, acr).
  extraTokenClaims: async (_ctx, token) => cfg.accounts[token.accountId] || {},
  pkce: { required: () => true },
  ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
  cookies: { keys: ["medfed-test-cookie-key"] },
});
provider.proxy = false;
provider.listen(cfg.port, "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${cfg.issuer}`);
});
