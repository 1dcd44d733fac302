import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { ProvisioningEvent, REGISTERED_EVENT } from '../core/registration/registration-service';

/**
 * Tells the seller's admin topic (e-mail subscription) about each new customer. Identifiers only:
 * contact details are personal data and stay in the table.
 */
export function snsAdminNotifier(client: SNSClient, topicArn: string): (event: ProvisioningEvent) => Promise<void> {
  return async (event) => {
    if (event.detailType !== REGISTERED_EVENT || event.detail.firstRegistration !== true) return;
    const d = event.detail;
    await client.send(
      new PublishCommand({
        TopicArn: topicArn,
        Subject: `New AWS Marketplace customer for ${String(d.productCode)}`.slice(0, 99),
        Message: [
          `A buyer registered for ${String(d.productCode)}.`,
          `Customer key: ${String(d.customerKey)}`,
          `AWS account: ${String(d.customerAWSAccountId)}`,
          d.licenseArn ? `Licence: ${String(d.licenseArn)}` : '',
          d.freeTrial ? 'Offer: free trial' : '',
        ]
          .filter(Boolean)
          .join('\n'),
      }),
    );
  };
}
