// graphql-codegen config used by tests/test_schema_codegen.py.
// The SDL file to generate from comes from the CODEGEN_SCHEMA environment variable;
// the output is types.ts next to this file (the test runs it in .cache/codegen/).
import type { CodegenConfig } from "@graphql-codegen/cli";

const schema = process.env.CODEGEN_SCHEMA;
if (!schema) {
  throw new Error("CODEGEN_SCHEMA must point at the SDL file to generate types from");
}

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
          DateTime: "string",
          Date: "string",
          Time: "string",
          Decimal: "string",
          UUID: "string",
          JSON: "unknown",
          Upload: "File",
        },
        // Any other custom scalar: still valid strict TypeScript.
        defaultScalarType: "unknown",
      },
    },
  },
};

export default config;
