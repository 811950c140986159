// The bench's HTTP/1.1 client: persistent keep-alive sockets, one request at a time on each, the
// request written as one prepared string. fetch() costs the load generator about as much CPU per
// request as the server spends on a health check; on a 2-core machine that cost would be measured
// as server latency, so the bench sends its bursts with this instead.
import { connect } from 'node:net';
import { once } from 'node:events';

const HEADER_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection; `request` resolves with the status and body of the next response. */
class Connection {
  #socket;
  #chunks = [];
  #waiting;

  constructor(socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.#onData(chunk));
    socket.on('error', (err) => this.#waiting?.reject(err));
    socket.on('close', () => this.#waiting?.reject(new Error('the server closed the connection')));
  }

  request(text) {
    if (this.#waiting) throw new Error('one request at a time per connection');
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#socket.write(text);
    });
  }

  #onData(chunk) {
    this.#chunks.push(chunk);
    const data = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks);
    this.#chunks = [data];
    const headerEnd = data.indexOf(HEADER_END);
    if (headerEnd < 0) return;
    const head = data.subarray(0, headerEnd).toString('latin1');
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!length) return this.#waiting?.reject(new Error(`no content-length in ${head}`));
    const end = headerEnd + HEADER_END.length + Number(length[1]);
    if (data.length < end) return;
    this.#chunks = data.length > end ? [data.subarray(end)] : [];
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve({
      status: Number(head.slice(9, 12)),
      head,
      body: data.subarray(headerEnd + HEADER_END.length, end).toString('utf8'),
    });
  }

  close() {
    this.#socket.destroy();
  }
}

/** `count` connections to `url` (http://host:port). */
export async function openConnections(url, count) {
  const { hostname, port } = new URL(url);
  return Promise.all(
    Array.from({ length: count }, async () => {
      const socket = connect(Number(port), hostname);
      await once(socket, 'connect');
      return new Connection(socket);
    }),
  );
}

/** A request as it goes on the wire; `headers` are name → value. */
export function requestText(method, url, headers, body = '') {
  const { host, pathname, search } = new URL(url);
  const lines = [`${method} ${pathname}${search} HTTP/1.1`, `host: ${host}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body || method === 'POST') lines.push(`content-length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
