// node-oidc-provider as a real authorization server for bearerguard's interop tests: the client
// credentials grant (RFC 6749 §4.4) with resource indicators (RFC 8707) issuing RFC 9068 JWT or
// opaque access tokens, introspection (RFC 7662) and revocation (RFC 7009), DPoP-bound (RFC 9449)
// and certificate-bound (RFC 8705) tokens.
//
// Usage: node provider.mjs CONFIG.json. The pytest fixture (conftest.py) writes CONFIG: the port
// (0 for any free one), the private JWKS, the clients, the resources and which clients may
// introspect. Once listening on 127.0.0.1 the server prints one line to stdout:
//   bearerguard-interop listening http://127.0.0.1:PORT
// Restarting it with a new JWKS on the same port is how the tests rotate the signing keys.
// GET /_bearerguard/requests answers how many requests each path has received since the start,
// so a test can tell whether bearerguard asked the server at all.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const introspectors = new Set(config.introspectors);

function resourceServerInfo(_ctx, resource) {
  // RFC 8707 §2: an unknown resource is an invalid_target error, never a token without audience.
  if (!Object.hasOwn(config.resources, resource)) throw new errors.InvalidTarget();
  return config.resources[resource];
}

// RFC 8705 without TLS on loopback: the client certificate of a token request is the URL-escaped
// PEM in this header, as a TLS-terminating proxy in front of an authorization server passes it.
const CERTIFICATE_HEADER = 'x-bearerguard-client-cert';

function getCertificate(ctx) {
  const value = ctx.get(CERTIFICATE_HEADER);
  return value ? decodeURIComponent(value) : undefined;
}

function configuration() {
  return {
    clients: config.clients,
    jwks: config.jwks,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: { ClientCredentials: config.access_token_ttl },
    // DPoP-bound tokens (RFC 9449 §5) for every proof algorithm bearerguard accepts by default.
    enabledJWA: { dPoPSigningAlgValues: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA', 'Ed25519'] },
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: true },
      // Certificate-bound tokens (RFC 8705 §3) for clients registered with
      // tls_client_certificate_bound_access_tokens: cnf["x5t#S256"] of the request's certificate.
      mTLS: { enabled: true, certificateBoundAccessTokens: true, getCertificate },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: () => false,
        getResourceServerInfo: resourceServerInfo,
      },
      // Only the resource server's own clients may ask what a token means (RFC 7662 §4).
      introspection: {
        enabled: true,
        allowedPolicy: (_ctx, client) => introspectors.has(client.clientId),
      },
      // A client may revoke only the tokens it was issued (RFC 7009 §2.1).
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
    },
  };
}

const COUNTS = '/_bearerguard/requests';
const counts = {};

function counted(callback) {
  return (req, res) => {
    const path = new URL(req.url, 'http://127.0.0.1').pathname;
    if (path === COUNTS) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(counts));
      return;
    }
    counts[path] = (counts[path] ?? 0) + 1; // before handling: visible once a response is seen
    callback(req, res);
  };
}

const server = createServer();
server.on('error', (error) => {
  console.error(`bearerguard-interop cannot listen: ${error.message}`);
  process.exit(1);
});
server.listen(config.port, '127.0.0.1', () => {
  // The issuer URL needs the port, known only now; requests are handled from this same tick on.
  const issuer = `http://127.0.0.1:${server.address().port}`;
  server.on('request', counted(new Provider(issuer, configuration()).callback()));
  console.log(`bearerguard-interop listening ${issuer}`);
});
