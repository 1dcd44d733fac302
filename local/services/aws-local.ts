/**
 * Settings every AWS SDK client pointed at a local service uses. The local services ignore
 * signatures, but the SDK still signs, so it needs some credentials and a region; fixed dummy values
 * keep it from ever looking up real ones (profiles, instance metadata) on a developer's machine.
 */
export const LOCAL_REGION = 'us-east-1';

export const LOCAL_CREDENTIALS: { readonly accessKeyId: string; readonly secretAccessKey: string } = Object.freeze({
  accessKeyId: 'local',
  secretAccessKey: 'local',
});

/** The configuration to hand to any AWS SDK v3 client constructor to talk to `endpoint`. */
export function localClientConfig(endpoint: string): {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
} {
  return { endpoint, region: LOCAL_REGION, credentials: { ...LOCAL_CREDENTIALS } };
}
