// An MCP client over streamable HTTP: lists the server's tools, one name
// per line. Usage: node list-tools.mjs URL (the MCP SDK must resolve from
// this file's directory).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const client = new Client({ name: "sbx-test-client", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(process.argv[2])));
const { tools } = await client.listTools();
for (const tool of tools) console.log(tool.name);
await client.close();
