// Calls a running gateway with the official openai package: models, chat, streaming, an error.
// Environment: PFORTE_BASE_URL (…/v1), PFORTE_API_KEY, PFORTE_MODEL. Prints one JSON line of results.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.PFORTE_BASE_URL,
  apiKey: process.env.PFORTE_API_KEY,
  maxRetries: 0,
});
const model = process.env.PFORTE_MODEL;
const result = {};

const models = [];
for await (const item of client.models.list()) models.push(item.id);
result.models = models;

const completion = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Hello from Node" }],
});
result.chat = { model: completion.model, content: completion.choices[0].message.content,
  usage: completion.usage, requestId: completion._request_id };

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Stream please" }],
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let streamUsage = null;
for await (const chunk of stream) {
  if (chunk.choices.length) text += chunk.choices[0].delta.content ?? "";
  if (chunk.usage) streamUsage = chunk.usage;
}
result.stream = { text, usage: streamUsage };

try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
  result.error = null;
} catch (err) {
  result.error = { name: err.constructor.name, status: err.status, code: err.code, requestID: err.requestID };
}
console.log(JSON.stringify(result));
