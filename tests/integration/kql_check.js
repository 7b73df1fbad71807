// SPDX-License-Identifier: MIT
// Parses and analyzes KQL queries with Kusto.Language (the parser and binder
// of Azure Data Explorer / Azure Monitor, npm @kusto/language-service-next)
// against the Application Insights tables the agent's items land in:
//
//   node kql_check.js MODULE_DIR < queries.json     [{"where": "...", "query": "..."}]
//
// Prints each diagnostic as "WHERE: MESSAGE (at OFFSET)"; exit status 1 when any.
"use strict";
const path = require("path");
const dir = path.join(path.resolve(process.argv[2]), "node_modules", "@kusto", "language-service-next");
global.Bridge = require(path.join(dir, "bridge.js"));
require(path.join(dir, "Kusto.Language.Bridge.js"));
const K = global.Kusto.Language;

// The columns of the classic Application Insights schema that tlsguard's items fill.
const common = "timestamp:datetime, name:string, itemType:string, customDimensions:dynamic, " +
	"cloud_RoleName:string, cloud_RoleInstance:string, sdkVersion:string, iKey:string";
const tables = [
	new K.Symbols.TableSymbol.$ctor7("customEvents", `(${common}, customMeasurements:dynamic)`, null),
	new K.Symbols.TableSymbol.$ctor7("customMetrics", `(${common}, value:real, valueCount:int, ` +
		"valueSum:real, valueMin:real, valueMax:real, valueStdDev:real)", null),
];
const globals = K.GlobalState.Default.WithDatabase(new K.Symbols.DatabaseSymbol.ctor("appinsights", tables));

const queries = JSON.parse(require("fs").readFileSync(0, "utf8"));
let bad = 0;
for (const { where, query } of queries) {
	const diags = K.KustoCode.ParseAndAnalyze(query, globals).GetDiagnostics();
	for (let i = 0; i < diags.Count; i++) {
		const d = diags.getItem(i);
		console.log(`${where}: ${d.Message} (at ${d.Start}: ${JSON.stringify(query.substr(d.Start, 30))})`);
		bad++;
	}
}
console.log(`kql: ${queries.length} queries, ${bad} diagnostics`);
process.exit(bad ? 1 : 0);
