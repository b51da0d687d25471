#!/usr/bin/env python3
"""A tiny OpenAI Responses API stub for benchmarks and manual runs.

POST /v1/responses answers with the minimal SSE codex accepts (a complete message item, then
response.completed with usage); GET /v1/models lists one model. Prints its port on stdout.
Usage: sse-stub.py [PORT] [REPLY_TEXT]
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY = sys.argv[2] if len(sys.argv) > 2 else "hi from the stub"


def sse(reply):
    item = {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": reply, "annotations": []}]}
    done = {"type": "response.output_item.done", "output_index": 0, "item": item}
    completed = {"type": "response.completed", "response": {
        "id": "resp_1", "object": "response", "status": "completed", "output": [item],
        "usage": {"input_tokens": 42, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": 49}}}
    return ("data: %s\n\ndata: %s\n\n" % (json.dumps(done), json.dumps(completed))).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "qwen3-coder", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        body = sse(REPLY)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
