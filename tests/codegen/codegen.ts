// graphql-codegen config used by tests/test_schema_codegen.py.
// The SDL file to generate from comes from the CODEGEN_SCHEMA environment variable;
// the outputs are written next to this file (the test runs it in .cache/codegen/):
//   types.ts  every schema type (the `typescript` plugin), checked against the SDL by the test;
//   gql/      the `client` preset over the operations in operations.ts, as a frontend uses it
//             (typed documents for Apollo Client, urql and graphql-request).
import type { CodegenConfig } from "@graphql-codegen/cli";

const schema = process.env.CODEGEN_SCHEMA;
if (!schema) {
  throw new Error("CODEGEN_SCHEMA must point at the SDL file to generate types from");
}

// Chattergram's two custom scalars, as a browser client sees them.
const scalars = {
  DateTime: "string", // RFC 3339 text, e.g. "2026-11-30T01:02:03.456Z"
  Upload: "File", // a file part of the GraphQL multipart request
};

const config: CodegenConfig = {
  schema,
  overwrite: true,
  silent: false,
  generates: {
    "types.ts": {
      plugins: ["typescript"],
      config: {
        // Emit GraphQL names unchanged so the test can match them against the SDL.
        namingConvention: "keep",
        enumsAsTypes: false,
        scalars: {
          ...scalars,
          Date: "string",
          Time: "string",
          Decimal: "string",
          UUID: "string",
          JSON: "unknown",
        },
        // Any other custom scalar: still valid strict TypeScript.
        defaultScalarType: "unknown",
      },
    },
    "gql/": {
      preset: "client",
      documents: ["operations.ts"],
      presetConfig: { fragmentMasking: false },
      config: {
        scalars,
        strictScalars: true, // a new custom scalar without a mapping fails here, not at run time
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
