// The GraphQL documents the page sends: queries, mutations, subscriptions (gql.js carries them).

const USER_FIELDS = "id username online lastSeenAt";
const MESSAGE_FIELDS = `id clientId kind senderId receiverId text sentAt transcriptionStatus
  audio { id url mimeType durationSeconds } transcript { text }`;

export const Q = {
  register: `mutation Register($input: RegisterInput!) {
    register(input: $input) { token expiresAt user { ${USER_FIELDS} } } }`,
  login: `mutation Login($input: LoginInput!) {
    login(input: $input) { token expiresAt user { ${USER_FIELDS} } } }`,
  me: `query Me { me { ${USER_FIELDS} } }`,
  contacts: `query Contacts {
    conversations(first: 100) { edges { node { unreadCount partnerLastReadAt
      lastMessage { id sentAt } partner { ${USER_FIELDS} } } } }
    online: users(onlineOnly: true, first: 200) { edges { node { ${USER_FIELDS} } } } }`,
  people: `query People($after: String) {
    users(first: 100, after: $after) { edges { node { ${USER_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
  history: `query History($partnerId: ID!, $last: Int, $before: String) {
    history(partnerId: $partnerId, last: $last, before: $before) {
      edges { node { ${MESSAGE_FIELDS} } } pageInfo { hasPreviousPage startCursor } } }`,
  message: `query Message($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`,
  send: `mutation SendMessage($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`,
  upload: `mutation UploadAudio($file: Upload!) { uploadAudio(file: $file) { id url mimeType durationSeconds } }`,
  retryTranscription: `mutation RetryTranscription($id: ID!) { retryTranscription(messageId: $id) { ${MESSAGE_FIELDS} } }`,
  markRead: `mutation MarkRead($partnerId: ID!, $upTo: ID!) { markRead(partnerId: $partnerId, upTo: $upTo) { unreadCount } }`,
  setTyping: `mutation SetTyping($partnerId: ID!, $typing: Boolean!) { setTyping(partnerId: $partnerId, typing: $typing) }`,
  search: `query Search($query: String!) { search(query: $query, first: 20) { total hits {
    __typename
    ... on UserHit { user { ${USER_FIELDS} } }
    ... on MessageHit { snippet message { id kind senderId receiverId sentAt
      sender { ${USER_FIELDS} } receiver { ${USER_FIELDS} } } } } } }`,
  messageEvents: `subscription MessageEvents { messageEvents { type message { ${MESSAGE_FIELDS}
    sender { ${USER_FIELDS} } receiver { ${USER_FIELDS} } } } }`,
  presence: `subscription Presence { presence { online at user { ${USER_FIELDS} } } }`,
  conversationEvents: `subscription ConversationEvents { conversationEvents { type partnerId at upTo } }`,
};
