import { MarketplaceLimits } from '../../lambda/core/marketplace-limits';

/** Behaviour switches of the simulator, changeable at start or through `POST /_admin/config`. */
export interface SimulatorConfig {
  /** How long a registration token resolves. @default 14400 (4 hours) */
  readonly tokenLifetimeSeconds: number;
  /** How old a usage record may be: the current API model (`24h`, with the 06:00 UTC month rule) or older documents (`6h`). @default '24h' */
  readonly timestampWindow: '24h' | '6h';
  /** Order of BatchMeterUsage Results: AWS documents none, so the default shuffles them. @default 'shuffled' */
  readonly resultOrder: 'shuffled' | 'request';
  /** BatchMeterUsage calls allowed per second of wall time before ThrottlingException; 0 turns the limit off. @default 10 */
  readonly rateLimitPerSecond: number;
  /** Where lifecycle notifications are POSTed (`{channel: "eventbridge", event}` or `{channel: "sns", topic, envelope}`). @default none */
  readonly notificationUrl?: string;
}

export const DEFAULT_SIMULATOR_CONFIG: SimulatorConfig = {
  tokenLifetimeSeconds: 4 * 3600,
  timestampWindow: '24h',
  resultOrder: 'shuffled',
  rateLimitPerSecond: MarketplaceLimits.requestsPerSecond,
};

/** A record may be this far ahead of the clock (client clocks drift). */
export const FUTURE_SKEW_SECONDS = 300;

export function windowSeconds(config: SimulatorConfig): number {
  return config.timestampWindow === '6h' ? 6 * 3600 : MarketplaceLimits.billingWindowSeconds;
}
