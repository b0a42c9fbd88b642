// An HTTP task's function in Node.js, with no packages: verify the Standard Webhooks
// signature Celeriac sends, do the work, answer with the result (docs/http-executor.md).
//
//   CELERIAC_HTTP_TASK_SECRET=whsec_... node examples/http_functions/receiver.js 8002
//   celeriac tasks put shop.add --url http://127.0.0.1:8002/add
//
// The signature is base64(HMAC-SHA256(secret, `${id}.${timestamp}.${body}`)), sent as
// "v1,<signature>" in webhook-signature; the secret is the base64 after "whsec_".
"use strict";
const http = require("http");
const crypto = require("crypto");

const secret = Buffer.from((process.env.CELERIAC_HTTP_TASK_SECRET || "").replace(/^whsec_/, ""), "base64");
const TOLERANCE_S = 300; // refuse replays of old requests

function verified(headers, body) {
  const id = headers["webhook-id"], timestamp = headers["webhook-timestamp"];
  const given = (headers["webhook-signature"] || "").split(" ");
  if (!id || !timestamp || Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_S) return false;
  const expected = crypto.createHmac("sha256", secret).update(`${id}.${timestamp}.${body}`).digest();
  return given.some((entry) => {
    const [version, signature] = entry.split(",");
    const candidate = Buffer.from(signature || "", "base64");
    return version === "v1" && candidate.length === expected.length && crypto.timingSafeEqual(candidate, expected);
  });
}

function answer(res, status, value) {
  const data = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    if (!verified(req.headers, body)) return answer(res, 401, { error: "not signed by Celeriac" });
    const run = JSON.parse(body); // {id, task, args, kwargs, attempt, deadline, ...}
    if (req.url === "/add") return answer(res, 200, run.args.reduce((a, b) => a + b, 0));
    return answer(res, 404, { error: `no function at ${req.url}` }); // the run fails
  });
}).listen(Number(process.argv[2] || 8002), "127.0.0.1");
