// verify.mjs checks a fluxauth access token the way another ecosystem would: with nothing but the
// published JWKS and node's built-in crypto. It exits 0 when the token is valid, 1 when it is not
// (printing "invalid: <reason>"), and 2 on a usage error, so a crash is never mistaken for a rejection.
//
//   node verify.mjs <jwks.json> <token> <issuer> <audience> [nowSeconds]
import { readFileSync } from 'node:fs';
import { createPublicKey, verify } from 'node:crypto';

const [jwksPath, token, issuer, audience, nowArg] = process.argv.slice(2);
if (!jwksPath || token === undefined || !issuer || !audience) {
  console.error('usage: node verify.mjs <jwks.json> <token> <issuer> <audience> [nowSeconds]');
  process.exit(2);
}

class Invalid extends Error {}
const check = (ok, reason) => { if (!ok) throw new Invalid(reason); };

function decodeJSON(segment, what) {
  check(/^[A-Za-z0-9_-]*$/.test(segment), `${what} is not base64url`);
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new Invalid(`${what} is not JSON`);
  }
}

try {
  const jwks = JSON.parse(readFileSync(jwksPath, 'utf8'));
  for (const k of jwks.keys) {
    check(!('d' in k), `JWKS key ${k.kid} carries private material`);
  }

  const parts = token.split('.');
  check(parts.length === 3, 'token does not have three segments');
  const [h, p, s] = parts;
  const header = decodeJSON(h, 'header');
  const claims = decodeJSON(p, 'payload');

  check(header.alg === 'ES256', `alg ${header.alg} is not ES256`);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  check(jwk !== undefined, `kid ${header.kid} is not in the JWKS`);
  check(jwk.kty === 'EC' && jwk.crv === 'P-256' && jwk.alg === 'ES256' && jwk.use === 'sig',
    `JWK ${jwk.kid} is not an ES256 signing key`);

  const key = createPublicKey({ key: jwk, format: 'jwk' });
  check(/^[A-Za-z0-9_-]+$/.test(s), 'signature is not base64url');
  const signature = Buffer.from(s, 'base64url');
  check(signature.length === 64, 'signature is not 64 bytes');
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, signature);
  check(ok, 'signature does not verify');

  const now = nowArg !== undefined ? Number(nowArg) : Math.floor(Date.now() / 1000);
  check(typeof claims.exp === 'number', 'exp is missing');
  check(now < claims.exp, 'token has expired');
  check(claims.nbf === undefined || now >= claims.nbf, 'token is not valid yet');
  check(claims.iss === issuer, `iss ${claims.iss} is not ${issuer}`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  check(aud.includes(audience), `aud ${JSON.stringify(claims.aud)} does not include ${audience}`);
  check(typeof claims.sub === 'string' && claims.sub !== '', 'sub is missing');
  check(typeof claims.sid === 'string' && claims.sid !== '', 'sid is missing');

  console.log(`valid: sub=${claims.sub} sid=${claims.sid} kid=${header.kid}`);
  process.exit(0);
} catch (err) {
  if (err instanceof Invalid) {
    console.log(`invalid: ${err.message}`);
    process.exit(1);
  }
  console.error(`error: ${err.stack ?? err}`);
  process.exit(2);
}
