#!/usr/bin/python3
"""A webhook receiver for the integration tests: answers every POST with 200 and appends its
JSON body, on one line, to OUT_JSONL (a body that is not JSON is kept as a string, so nothing
received is lost). Listens on 127.0.0.1, on PORT or (0, the default) a port the kernel
chooses; once listening it writes {"port": N} to READY_FILE (written to a temporary name and
renamed, so a reader never sees it half-written). Runs until SIGTERM or SIGINT.

    webhook_receiver.py OUT_JSONL READY_FILE [PORT]
"""
import http.server
import json
import os
import signal
import sys
import threading


def main():
    if len(sys.argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    out_path, ready_path = sys.argv[1], sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) == 4 else 0
    out = open(out_path, "a", encoding="utf-8")
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            with lock:
                out.write(json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n")
                out.flush()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt, *args):
            sys.stderr.write("webhook: %s %s\n" % (self.client_address[0], fmt % args))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    tmp = ready_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"port": server.server_address[1]}, f)
    os.rename(tmp, ready_path)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
