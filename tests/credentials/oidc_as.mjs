// A real OAuth 2.x / OpenID authorization server (npm `oidc-provider`, OpenID Certified) on loopback, for
// the hub's OAuth client tests. PKCE (S256 only), dynamic client registration, RFC 8707 resource
// indicators, refresh-token rotation, RFC 7009 revocation, RFC 9207 `iss` in authorization responses.
//
// Tokens for a Python SDK upstream on another loopback port (`http://127.0.0.1:PORT/mcp` or `/sse`) are issued
// for that resource; the upstream introspects them (RFC 7662) as the static client below.
//
// Next to it, on the same port, a tiny protected resource standing in for an upstream MCP server:
// `/mcp` answers 401 with an RFC 9728 `resource_metadata` challenge, and with a valid token echoes the
// token's subject and audience (so tests can see whose token the hub presents).
//
// Test-only routes: GET /test/counts, POST /test/reset, POST /test/destroy-access-token. Login is "whoever the browser says it is" via the
// `X-Test-User` header on the interaction request; consent is granted for what was asked.
//
// Prints one JSON line {"issuer": ...} on stdout when listening. Runs until killed.
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const resource = `${issuer}/mcp`;
const accessTtl = Number(process.env.ACCESS_TTL || 3600);

const counts = { paths: {}, grants: {}, registrations: 0 };
const reset = () => {
  counts.paths = {};
  counts.grants = {};
  counts.registrations = 0;
};

// Python SDK upstreams (tests/mcp_peers/oauth_upstream.py) listen on their own loopback ports; each is
// its own resource and checks tokens at the introspection endpoint as this client (a resource server:
// it obtains no tokens itself).
const loopbackResource = /^http:\/\/127\.0\.0\.1:\d+\/(mcp|sse)$/;
export const INTROSPECTION_CLIENT = { id: 'upstream-introspection', secret: 'test-only-introspection-secret' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: INTROSPECTION_CLIENT.id,
      client_secret: INTROSPECTION_CLIENT.secret,
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ],
  cookies: { keys: ['test-only-cookie-key-not-a-secret'] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  scopes: ['openid', 'offline_access', 'mcp:tools'],
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource && !loopbackResource.test(indicator)) throw new Error(`unknown resource ${indicator}`);
        return { scope: 'mcp:tools', audience: indicator, accessTokenTTL: accessTtl, accessTokenFormat: 'opaque' };
      },
    },
  },
  pkce: { required: () => true },
  // Every grant gets a refresh token (no `offline_access` dance), and every refresh rotates it.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});
provider.proxy = false;

provider.on('grant.success', (ctx) => {
  const type = ctx.oidc.params.grant_type;
  counts.grants[type] = (counts.grants[type] || 0) + 1;
});
provider.on('registration_create.success', () => {
  counts.registrations += 1;
});

const json = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const user = req.headers['x-test-user'];
  if (!user) return json(res, 401, { error: 'login_required' });
  if (details.prompt.name === 'login') {
    return provider.interactionFinished(req, res, { login: { accountId: String(user) } }, { mergeWithLastSubmission: false });
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function protectedResource(req, res) {
  const challenge = `Bearer resource_metadata="${issuer}/.well-known/oauth-protected-resource/mcp"`;
  const auth = req.headers.authorization || '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7) : null;
  const found = token ? await provider.AccessToken.find(token) : undefined;
  if (!found || found.isExpired) return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': challenge });
  return json(res, 200, { sub: found.accountId, aud: found.aud, client_id: found.clientId });
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  const { pathname } = new URL(req.url, issuer);
  counts.paths[pathname] = (counts.paths[pathname] || 0) + 1;
  try {
    if (pathname === '/test/counts') return json(res, 200, counts);
    if (pathname === '/test/reset') {
      reset();
      return json(res, 200, counts);
    }
    if (pathname === '/test/destroy-access-token' && req.method === 'POST') {
      // Ends one access token and nothing else (RFC 7009 revocation here revokes the whole grant): how
      // an upstream comes to refuse a token before its expiry while the refresh token still works.
      let body = '';
      for await (const chunk of req) body += chunk;
      const found = await provider.AccessToken.find(JSON.parse(body).token);
      if (found) await found.destroy();
      return json(res, 200, { destroyed: Boolean(found) });
    }
    if (pathname === '/mcp') return await protectedResource(req, res);
    if (pathname === '/.well-known/oauth-protected-resource/mcp') {
      return json(res, 200, { resource, authorization_servers: [issuer], scopes_supported: ['mcp:tools'] });
    }
    if (pathname.startsWith('/interaction/')) return await interaction(req, res);
    return callback(req, res);
  } catch (err) {
    return json(res, 500, { error: 'server_error', message: String(err && err.message) });
  }
});

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
