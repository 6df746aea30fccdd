/**
 * The WebSocket tunnel (`<base>/websocket-tunnel`, subprotocol `guacamole`, as guacamole-common-js Tunnel.js opens it).
 * No guacd behind it: an accepted tunnel sends what guacamole-common-js needs to call itself connected (the tunnel UUID
 * instruction, a display size and a first `sync`), answers pings, sends `nop` keep-alives and stays an active
 * connection until either side closes. A refused tunnel is accepted and then closed with the WebSocket code and the
 * Guacamole status code as reason, as GuacamoleWebSocketTunnelEndpoint#closeConnection does.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { TUNNEL_STATUS } from './errors';
import { GuacamoleState } from './state';

const KEEP_ALIVE_MS = 5_000;

/** One instruction of the Guacamole protocol: `<len>.<value>` elements, comma-separated, `;`-terminated. */
export function encodeInstruction(opcode: string, ...args: string[]): string {
  return `${[opcode, ...args].map((element) => `${[...element].length}.${element}`).join(',')};`;
}

/** Splits a chunk of the instruction stream; good enough for the short instructions clients send. */
export function decodeInstructions(data: string): string[][] {
  const instructions: string[][] = [];
  let elements: string[] = [];
  let position = 0;
  while (position < data.length) {
    const dot = data.indexOf('.', position);
    if (dot === -1) break;
    const length = Number(data.slice(position, dot));
    if (!Number.isInteger(length) || length < 0) break;
    const chars = [...data.slice(dot + 1)];
    const value = chars.slice(0, length).join('');
    elements.push(value);
    position = dot + 1 + value.length;
    const terminator = data[position];
    position++;
    if (terminator === ';') {
      instructions.push(elements);
      elements = [];
    } else if (terminator !== ',') break;
  }
  return instructions;
}

const stripMappedIpv4 = (address: string | undefined) => (address ? address.replace(/^::ffff:/, '') : null);

export function attachTunnel(server: Server, basePath: string, state: GuacamoleState): { closeAll(): void } {
  const sockets = new Map<string, WebSocket>();
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has('guacamole') ? 'guacamole' : false),
  });

  state.onTunnelKilled = (identifier) => {
    const ws = sockets.get(identifier);
    sockets.delete(identifier);
    ws?.close(TUNNEL_STATUS.SUCCESS.wsCode, String(TUNNEL_STATUS.SUCCESS.guacCode));
  };

  const onConnection = (ws: WebSocket, request: IncomingMessage, url: URL) => {
    const query = url.searchParams;
    let record: ReturnType<GuacamoleState['openTunnel']>;
    try {
      record = state.openTunnel({
        token: query.get('token'),
        dataSource: query.get('GUAC_DATA_SOURCE'),
        id: query.get('GUAC_ID'),
        type: query.get('GUAC_TYPE'),
        width: query.get('GUAC_WIDTH'),
        height: query.get('GUAC_HEIGHT'),
        dpi: query.get('GUAC_DPI'),
        remoteHost: stripMappedIpv4(request.socket.remoteAddress),
      });
    } catch (error) {
      const status = GuacamoleState.tunnelStatusOf(error);
      ws.close(status.wsCode, String(status.guacCode));
      return;
    }

    const identifier = record.identifier;
    sockets.set(identifier, ws);
    const width = query.get('GUAC_WIDTH') ?? '1024';
    const height = query.get('GUAC_HEIGHT') ?? '768';
    ws.send(encodeInstruction('', identifier));
    ws.send(encodeInstruction('size', '0', width, height) + encodeInstruction('sync', String(Date.now())));
    const keepAlive = setInterval(() => ws.send(encodeInstruction('nop')), KEEP_ALIVE_MS);
    keepAlive.unref();

    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      for (const instruction of decodeInstructions(data.toString())) {
        const [opcode, ...args] = instruction;
        // Internal opcode "" carries tunnel pings, which the server echoes (Guacamole.WebSocketTunnel).
        if (opcode === '' && args[0] === 'ping') ws.send(encodeInstruction('', ...args));
        if (opcode === 'disconnect') ws.close(TUNNEL_STATUS.SUCCESS.wsCode, String(TUNNEL_STATUS.SUCCESS.guacCode));
        // What guacd does with a user's input: passes it to the desktop, or drops it for a read-only joiner.
        if (opcode === 'key' || opcode === 'mouse') state.recordInput(identifier);
      }
    });
    ws.on('close', () => {
      clearInterval(keepAlive);
      sockets.delete(identifier);
      state.closeTunnel(identifier);
    });
  };

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== `${basePath}/websocket-tunnel`) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => onConnection(ws, request, url));
  });

  return {
    closeAll() {
      for (const ws of wss.clients) ws.terminate();
      sockets.clear();
      wss.close();
    },
  };
}
