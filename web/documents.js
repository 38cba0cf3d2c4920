// The GraphQL documents the page sends: queries, mutations, subscriptions (gql.js carries them).

const USER_FIELDS = "id username online lastSeenAt";
// The quoted message of a reply, as it is now (edited, or a tombstone once deleted).
const QUOTE_FIELDS = "id kind senderId text deletedAt sender { id username }";
const MESSAGE_FIELDS = `id conversationId clientId kind senderId receiverId text sentAt transcriptionStatus
  audio { id url mimeType durationSeconds waveform speechSegments { start end } }
  transcript { text words { word start end } } sender { ${USER_FIELDS} }
  editedAt deletedAt reactions { emoji count reactedByMe } replyTo { ${QUOTE_FIELDS} }`;
const CONVERSATION_FIELDS = `id kind title memberCount unreadCount lastReadAt partnerLastReadAt muted mutedUntil
  lastMessage { id sentAt } partner { ${USER_FIELDS} }
  members { role joinedAt user { ${USER_FIELDS} } }`;
// One of conversationId / partnerId is null: the API takes exactly one.
const WHERE = "$conversationId: ID, $partnerId: ID";
const IN = "conversationId: $conversationId, partnerId: $partnerId";

export const Q = {
  register: `mutation Register($input: RegisterInput!) {
    register(input: $input) { token expiresAt user { ${USER_FIELDS} } } }`,
  login: `mutation Login($input: LoginInput!) {
    login(input: $input) { token expiresAt user { ${USER_FIELDS} } } }`,
  me: `query Me { me { ${USER_FIELDS} } }`,
  contacts: `query Contacts {
    conversations(first: 100) { edges { node { ${CONVERSATION_FIELDS} } } }
    online: users(onlineOnly: true, first: 200) { edges { node { ${USER_FIELDS} } } } }`,
  conversation: `query Conversation($id: ID!) { conversation(id: $id) { ${CONVERSATION_FIELDS} } }`,
  people: `query People($after: String) {
    users(first: 100, after: $after) { edges { node { ${USER_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
  history: `query History(${WHERE}, $last: Int, $before: String) {
    history(${IN}, last: $last, before: $before) {
      edges { node { ${MESSAGE_FIELDS} } } pageInfo { hasPreviousPage startCursor } } }`,
  message: `query Message($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`,
  send: `mutation SendMessage($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`,
  editMessage: `mutation EditMessage($id: ID!, $text: String!) { editMessage(id: $id, text: $text) { ${MESSAGE_FIELDS} } }`,
  deleteMessage: `mutation DeleteMessage($id: ID!) { deleteMessage(id: $id) { ${MESSAGE_FIELDS} } }`,
  react: `mutation React($id: ID!, $emoji: String!) { react(messageId: $id, emoji: $emoji) { ${MESSAGE_FIELDS} } }`,
  unreact: `mutation Unreact($id: ID!, $emoji: String!) { unreact(messageId: $id, emoji: $emoji) { ${MESSAGE_FIELDS} } }`,
  upload: `mutation UploadAudio($file: Upload!) { uploadAudio(file: $file) { id url mimeType durationSeconds } }`,
  retryTranscription: `mutation RetryTranscription($id: ID!) { retryTranscription(messageId: $id) { ${MESSAGE_FIELDS} } }`,
  markRead: `mutation MarkRead(${WHERE}, $upTo: ID!) { markRead(${IN}, upTo: $upTo) { id unreadCount } }`,
  setTyping: `mutation SetTyping(${WHERE}, $typing: Boolean!) { setTyping(${IN}, typing: $typing) }`,
  createGroup: `mutation CreateGroup($input: CreateGroupInput!) { createGroup(input: $input) { ${CONVERSATION_FIELDS} } }`,
  addMembers: `mutation AddMembers($conversationId: ID!, $userIds: [ID!]!) {
    addMembers(conversationId: $conversationId, userIds: $userIds) { ${CONVERSATION_FIELDS} } }`,
  removeMember: `mutation RemoveMember($conversationId: ID!, $userId: ID!) {
    removeMember(conversationId: $conversationId, userId: $userId) { ${CONVERSATION_FIELDS} } }`,
  leaveGroup: `mutation LeaveGroup($conversationId: ID!, $userId: ID!) {
    removeMember(conversationId: $conversationId, userId: $userId) { id } }`,
  renameGroup: `mutation RenameGroup($conversationId: ID!, $title: String!) {
    renameGroup(conversationId: $conversationId, title: $title) { ${CONVERSATION_FIELDS} } }`,
  setMemberRole: `mutation SetMemberRole($conversationId: ID!, $userId: ID!, $role: MemberRole!) {
    setMemberRole(conversationId: $conversationId, userId: $userId, role: $role) { ${CONVERSATION_FIELDS} } }`,
  vapidPublicKey: "query VapidPublicKey { vapidPublicKey }",
  registerPush: `mutation RegisterPush($input: PushSubscriptionInput!) { registerPushSubscription(input: $input) }`,
  unregisterPush: `mutation UnregisterPush($endpoint: String!) { unregisterPushSubscription(endpoint: $endpoint) }`,
  mute: `mutation Mute($id: ID!, $until: DateTime) {
    muteConversation(conversationId: $id, until: $until) { id muted mutedUntil } }`,
  unmute: `mutation Unmute($id: ID!) { unmuteConversation(conversationId: $id) { id muted mutedUntil } }`,
  blockedUsers: `query BlockedUsers { blockedUsers { id } }`,
  blockUser: `mutation BlockUser($userId: ID!) { blockUser(userId: $userId) }`,
  unblockUser: `mutation UnblockUser($userId: ID!) { unblockUser(userId: $userId) }`,
  reportMessage: `mutation ReportMessage($messageId: ID!, $reason: String!) {
    reportMessage(messageId: $messageId, reason: $reason) }`,
  findPeople: `query FindPeople($query: String!) { search(query: $query, first: 20) { hits {
    ... on UserHit { user { ${USER_FIELDS} } } } } }`,
  search: `query Search($query: String!, $conversationId: ID) {
    search(query: $query, first: 20, conversationId: $conversationId) { total hits {
    __typename
    ... on UserHit { user { ${USER_FIELDS} } }
    ... on MessageHit { snippet matches { word start end } message { id conversationId kind senderId receiverId sentAt
      sender { ${USER_FIELDS} } receiver { ${USER_FIELDS} } } } } } }`,
  messageEvents: `subscription MessageEvents { messageEvents { type message { ${MESSAGE_FIELDS}
    receiver { ${USER_FIELDS} } } } }`,
  presence: `subscription Presence { presence { online at user { ${USER_FIELDS} } } }`,
  conversationEvents: `subscription ConversationEvents { conversationEvents {
    type conversationId userId partnerId at upTo } }`,
};
