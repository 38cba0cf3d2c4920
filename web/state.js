// The page's shared mutable state, in one place so that every module can import it.

export const state = {
  session: null, // {token, expiresAt, user}
  socket: null,
  unsubscribe: [],
  users: new Map(), // id -> user
  conversations: new Map(), // conversation id -> record (see contacts.rememberConversation)
  directs: new Map(), // partner id -> id of the DIRECT conversation with them
  contactEls: new Map(), // list row key ("u:<user id>", "c:<group id>") -> <li>
  people: { after: null, hasMore: false, loading: false },
  open: null, // the open conversation (see openConversation)
  recording: null,
  typingSent: 0,
  replyTo: null, // the message the composer replies to (shown quoted above it)
  editing: null, // {id, text, draft}: the message of mine the composer edits, and the draft it set aside
  typingTimer: null,
  searchTimer: null,
  searchSeq: 0,
  expiryTimer: null,
};

export const me = () => state.session && state.session.user;
export const token = () => state.session && state.session.token;
