import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** A command as the stub client received it (its input copied as JSON). */
export interface Sent {
  readonly name: string;
  readonly input: any;
}

/**
 * A DynamoDB document client whose `send` records each command and returns (or throws) what `answer`
 * gives, for the adapters' unit tests. It is an instance of DynamoDBDocumentClient because the SDK's
 * paginators (paginateQuery, for the work index) check that.
 */
export function stubClient(answer: (sent: Sent, call: number) => unknown = () => ({})) {
  const sent: Sent[] = [];
  const client = Object.create(DynamoDBDocumentClient.prototype) as DynamoDBDocumentClient;
  Object.defineProperty(client, 'send', {
    value: async (command: { constructor: { name: string }; input: unknown }) => {
      const call: Sent = { name: command.constructor.name, input: JSON.parse(JSON.stringify(command.input)) };
      sent.push(call);
      const result = answer(call, sent.length - 1);
      if (result instanceof Error) throw result;
      return result ?? {};
    },
  });
  return { client, sent };
}
