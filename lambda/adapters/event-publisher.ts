import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { ProvisioningEvent } from '../core/registration/registration-service';

/** Event source of everything this stack announces on EventBridge. */
export const EVENT_SOURCE = 'marketplace.saas-integration';

/** Publishes provisioning events; a rejected entry is an error (PutEvents reports it, not throws). */
export function eventBridgePublisher(client: EventBridgeClient, eventBusName: string): (event: ProvisioningEvent) => Promise<void> {
  return async (event) => {
    const result = await client.send(
      new PutEventsCommand({
        Entries: [
          { EventBusName: eventBusName, Source: EVENT_SOURCE, DetailType: event.detailType, Detail: JSON.stringify(event.detail) },
        ],
      }),
    );
    if (result.FailedEntryCount) {
      const entry = result.Entries?.find((e) => e.ErrorCode);
      throw new Error(`EventBridge rejected the event: ${entry?.ErrorCode} ${entry?.ErrorMessage ?? ''}`.trim());
    }
  };
}
