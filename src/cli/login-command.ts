/**
 * `mailmover login --provider microsoft|google --client-id ID [--tenant T] [--out FILE]`: the OAuth
 * 2.0 device authorization grant (src/core/oauth-device.ts). Prints the code and where to enter it
 * (stderr), waits for the approval, and stores the refresh token in FILE (mode 0600; see
 * src/core/oauth-credentials.ts) for --from-oauth/--to-oauth and `oauth: { credentials }`.
 * No token is ever printed.
 */
import { readFile } from 'node:fs/promises';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { registerSecret } from '../core/redact.js';
import { pollForToken, providerEndpoints, requestDeviceCode, type OAuthProviderName } from '../core/oauth-device.js';
import { checkCredentialsTarget, writeCredentials, type OAuthCredentials } from '../core/oauth-credentials.js';
import { onInterrupt } from './common.js';
import { terminalText } from './output.js';
import { EXIT } from './exit-codes.js';

export interface LoginFlags {
  provider: OAuthProviderName;
  clientId: string;
  clientSecretFile?: string;
  tenant?: string;
  out: string;
  deviceEndpoint?: string;
  tokenEndpoint?: string;
}

export async function runLogin(flags: LoginFlags): Promise<number> {
  if (flags.tenant && flags.provider !== 'microsoft') throw new MigrateError(ERROR_CODES.CONFIG_OPTION, '--tenant is for --provider microsoft.', { scope: 'config' });
  const endpoints = providerEndpoints(flags.provider, flags.tenant, { deviceEndpoint: flags.deviceEndpoint, tokenEndpoint: flags.tokenEndpoint });
  let clientSecret: string | undefined;
  if (flags.clientSecretFile) {
    try {
      clientSecret = (await readFile(flags.clientSecretFile, 'utf8')).trim();
    } catch (err) {
      throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `--client-secret-file: cannot read "${flags.clientSecretFile}" (${(err as NodeJS.ErrnoException).code ?? 'error'}).`, { scope: 'config' });
    }
    registerSecret(clientSecret);
  }
  // An unsafe --out is refused now, not after the user has approved.
  await checkCredentialsTarget(flags.out);
  const client = { clientId: flags.clientId, clientSecret };
  const controller = new AbortController();
  const release = onInterrupt(controller, 'stopping the sign-in');
  try {
    const device = await requestDeviceCode(endpoints.deviceEndpoint, client, endpoints.scopes, controller.signal);
    const where = device.verificationUriComplete ?? device.verificationUri;
    process.stderr.write(
      `To sign in, open ${terminalText(where)} in a browser (on any device) and enter the code ${terminalText(device.userCode)}\n` +
        `Waiting for the approval (the code is valid for ${Math.round(device.expiresIn / 60)} min; Ctrl-C stops) ...\n`,
    );
    const set = await pollForToken({ tokenEndpoint: endpoints.tokenEndpoint, client, device, signal: controller.signal });
    registerSecret(set.accessToken);
    if (!set.refreshToken) {
      throw new MigrateError(ERROR_CODES.OAUTH_FAILED, 'The provider gave no refresh token, so mailmover could not renew access during a run (Microsoft: the offline_access scope must be allowed).', { scope: 'mailbox' });
    }
    registerSecret(set.refreshToken);
    const creds: OAuthCredentials = {
      kind: 'mailmover-oauth',
      version: 1,
      provider: flags.provider,
      clientId: flags.clientId,
      ...(clientSecret ? { clientSecret } : {}),
      ...(flags.tenant ? { tenant: flags.tenant } : {}),
      scopes: endpoints.scopes,
      tokenEndpoint: endpoints.tokenEndpoint,
      refreshToken: set.refreshToken,
      updatedAt: new Date().toISOString(),
    };
    await writeCredentials(flags.out, creds);
    process.stderr.write(`Signed in. The refresh token is stored in ${terminalText(flags.out)} (mode 0600); use it with --from-oauth or --to-oauth.\n`);
    return EXIT.OK;
  } finally {
    release();
  }
}
