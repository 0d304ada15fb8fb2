// The same server with Express 5: `node examples/express.mjs` (npm install express).
// expressBody() stands where body-parser's raw() would: req.body is an SGL, freed when the
// response closes; a body over the limit reaches the error handler as a 413.
import { createHash } from 'node:crypto';
import express from 'express';
import { MMSA, expressBody, sendSGL } from 'memsys';

const mm = new MMSA({ name: 'express-example' });
mm.init();

const app = express();
app.use(expressBody(mm, { limit: 64 << 20 }));
app.post('/echo', (req, res) => { sendSGL(res, req.body); });
app.post('/upload', async (req, res) => {
  const sha256 = createHash('sha256');
  for await (const chunk of req.body) sha256.update(chunk);
  res.json({ bytes: req.body.size, sha256: sha256.digest('hex') });
});
app.use((err, _req, res, _next) => res.status(err.status ?? 500).send(`${err.message}\n`));

const server = app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
