// GraphiQL for Chattergram, with every asset served by the app itself (no CDN): queries and
// mutations are POSTed to /graphql; subscriptions go over a WebSocket to the same /graphql
// with the graphql-transport-ws protocol (GraphiQL's bundled graphql-ws client), and the
// headers pane is sent as the connection_init payload, so {"Authorization": "Bearer <token>"}
// authenticates subscriptions as it does queries.
"use strict";

(function () {
  const HEADERS_EXAMPLE = '{"Authorization": "Bearer <token from register or login>"}';
  const EXAMPLE_QUERY = `# Chattergram's GraphQL API. Sign up, copy the token into the headers pane as
# ${HEADERS_EXAMPLE}, then try \`me\`, \`users\` or a subscription.
mutation SignUp {
  register(input: {username: "alice", email: "alice@example.com", password: "correct horse"}) {
    token
    user { id username }
  }
}
`;
  const url = new URL("/graphql", window.location.href);
  const subscriptionUrl = new URL(url);
  subscriptionUrl.protocol = url.protocol === "https:" ? "wss:" : "ws:";

  const fetcher = GraphiQL.createFetcher({
    url: url.toString(),
    subscriptionUrl: subscriptionUrl.toString(),
  });

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: EXAMPLE_QUERY,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    }),
  );
})();
