/**
 * The events without an eventId that a fold counted, by their default identity: the SQS message id
 * and the event's position in it. Two entries can hold the same event when two deliveries of a
 * message overlap (each writes what it did not see the other write, under its own entry id), so
 * the fold counts such an event once, as it counts an eventId once.
 */
export class MessagePositionSet {
  private readonly byMessage = new Map<string, Set<number>>();

  /** Adds the event; false when it was there already. */
  add(messageId: string, position: number): boolean {
    let positions = this.byMessage.get(messageId);
    if (!positions) this.byMessage.set(messageId, (positions = new Set()));
    if (positions.has(position)) return false;
    positions.add(position);
    return true;
  }
}
