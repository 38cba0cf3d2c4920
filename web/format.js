// How times read: message times, “last seen …”, and the m:ss clock of voice messages.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
export const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function shortTime(iso) {
  const date = new Date(iso);
  const today = new Date();
  return date.toDateString() === today.toDateString() ? timeFormat.format(date) : dateTimeFormat.format(date);
}

export function ago(iso) {
  if (!iso) return "offline";
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return "last seen just now";
  if (seconds < 3600) return `last seen ${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `last seen ${Math.round(seconds / 3600)} h ago`;
  return `last seen ${dateTimeFormat.format(new Date(iso))}`;
}

export function clock(seconds) {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
