// An upload/echo server on Node's http with request bodies in SGLs: `node examples/http.mjs`.
//   curl --data-binary @file -H 'content-type: application/octet-stream' http://127.0.0.1:PORT/echo
import { createHash } from 'node:crypto';
import http from 'node:http';
import { BodyError, MMSA, readBody, sendSGL } from 'memsys';

const mm = new MMSA({ name: 'http-example' });
mm.init();

const server = http.createServer(async (req, res) => {
  try {
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const body = await readBody(mm, req, { limit: 64 << 20 });
    if (req.url === '/echo') return void sendSGL(res, body); // frees body when the response closes
    const sha256 = createHash('sha256');
    for await (const chunk of body) sha256.update(chunk);  // views of the SGL's buffers, no copy
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ bytes: body.size, sha256: sha256.digest('hex') }));
    body.free();
  } catch (e) {
    res.writeHead(e instanceof BodyError ? e.status : 500).end(`${e.message}\n`);
  }
});

server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
