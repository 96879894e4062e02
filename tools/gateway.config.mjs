// Hive Gateway configuration for medfed's supergraph: pass the caller's credentials and
// purpose of use to every subgraph. Each subgraph authenticates the token and decides every
// field itself; the router enforces nothing on its own.
import { defineConfig } from "@graphql-hive/gateway";

const FORWARDED = ["authorization", "x-purpose-of-use", "x-request-id"];

export const gatewayConfig = defineConfig({
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      const headers = {};
      for (const name of FORWARDED) {
        const value = request.headers.get(name);
        if (value) headers[name] = value;
      }
      return headers;
    },
  },
  // Answers must match medfed's own errors (codes, paths), not a masked "Unexpected error".
  maskedErrors: false,
});
