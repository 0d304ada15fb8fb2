// The same server with Fastify 5: `node examples/fastify.mjs` (npm install fastify).
// fastifyBody() parses application/octet-stream into an SGL under each route's bodyLimit, freed
// when the response closes; other content types keep Fastify's own parsers.
import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import { MMSA, fastifyBody } from 'memsys';

const mm = new MMSA({ name: 'fastify-example' });
mm.init();

const app = Fastify();
await app.register(fastifyBody(mm));
app.post('/echo', { bodyLimit: 64 << 20 }, (req, reply) =>
  reply.type('application/octet-stream').header('content-length', req.body.len).send(req.body.toReadable()));
app.post('/upload', { bodyLimit: 64 << 20 }, async (req) => {
  const sha256 = createHash('sha256');
  for await (const chunk of req.body) sha256.update(chunk);
  return { bytes: req.body.size, sha256: sha256.digest('hex') };
});

await app.listen({ port: Number(process.env.PORT ?? 8080), host: '127.0.0.1' });
console.log(`listening on http://127.0.0.1:${app.server.address().port}`);
