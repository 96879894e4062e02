// Compose subgraph SDLs into a supergraph with the committed composer.
// Input on stdin: JSON [{"name", "url", "sdl"}]. Output: the supergraph SDL on stdout, or the
// composition errors on stderr and exit status 1 (a supergraph that does not compose must never
// be written).
import { composeServices } from "@theguild/federation-composition";
import { parse } from "graphql";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const services = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const result = composeServices(
  services.map((s) => ({ name: s.name, url: s.url, typeDefs: parse(s.sdl) })),
);
if (result.errors && result.errors.length) {
  for (const error of result.errors) {
    process.stderr.write(`${error.extensions?.code ?? "ERROR"}: ${error.message}\n`);
  }
  process.exit(1);
}
process.stdout.write(result.supergraphSdl);
