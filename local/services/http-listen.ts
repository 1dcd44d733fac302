import { Server } from 'node:http';
import { AddressInfo } from 'node:net';

/** A started local HTTP server: its URL and how to stop it (open keep-alive connections included). */
export interface ListeningServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Listens on `host:port` (port 0: a free one) and resolves once the server accepts connections. */
export async function listen(server: Server, port = 0, host = '127.0.0.1'): Promise<ListeningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
