"""The full-screen mode (`--tui`): conversations, the online list, the open
conversation's messages and a composer, on the same connection as the line mode.
"""

import asyncio

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Input, Label, Log, OptionList, Static
from textual.widgets.option_list import Option

from chat.client.connection import Connection, SessionEnded, login_with_retry
from chat.client.lines import (
    HELP,
    Conversation,
    ErrorEvent,
    Event,
    Help,
    Invalid,
    Join,
    JoinedEvent,
    MessageEvent,
    OnlineEvent,
    PresenceEvent,
    Quit,
    Rooms,
    RoomsEvent,
    Send,
    StatusEvent,
    Who,
    clean,
    conversation_of,
    error_line,
    message_line,
    online_line,
    parse_input,
    presence_line,
    rooms_line,
)
from chat.client.session import LoginRefused, Session

EXIT_LOGIN, EXIT_SESSION_ENDED = 2, 3


def _key(conversation: Conversation) -> str:
    return f"{conversation.kind}:{conversation.name}"


class ChatApp(App):
    """A terminal chat: pick a conversation on the left, read in the middle, type below."""

    TITLE = "chat"
    CSS = """
    #sidebar { width: 26; border-right: solid $primary-darken-2; padding: 0 1; }
    #sidebar Label { text-style: bold; color: $text-muted; margin-top: 1; }
    #conversations { height: 1fr; border: none; }
    #online { height: auto; max-height: 12; }
    #main { width: 1fr; }
    #log { height: 1fr; padding: 0 1; scrollbar-size-horizontal: 0; }
    #notice { height: auto; color: $warning; padding: 0 1; }
    #composer { dock: bottom; }
    """
    BINDINGS = [Binding("ctrl+q", "quit", "Quit"), Binding("ctrl+o", "focus_list", "Conversations")]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.connection = Connection(session=session, emit=self.on_chat_event)
        self.conversations: dict[str, Conversation] = {}
        self.shown: dict[Conversation, list[str]] = {}  # conversation -> its lines, oldest first
        self.unread: dict[Conversation, int] = {}

    def compose(self) -> ComposeResult:
        """Lays out the sidebar, the log and the composer."""
        yield Header(icon="≡")
        with Horizontal():
            with Vertical(id="sidebar"):
                yield Label("Conversations")
                yield OptionList(id="conversations")
                yield Label("Online")
                yield Static("", id="online")
            with Vertical(id="main"):
                yield Log(id="log", highlight=False)
                yield Static("", id="notice")
                yield Input(placeholder="Message #general  (/help for commands)", id="composer")
        yield Footer()

    def on_mount(self) -> None:
        """Starts the connection and puts the cursor in the composer."""
        self.sub_title = f"{self.session.user} · connecting…"
        self.query_one("#composer", Input).focus()
        self.run_worker(self._run_connection(), exclusive=True, exit_on_error=False)

    async def _run_connection(self) -> None:
        try:
            await self.connection.run()
        except SessionEnded:
            self.exit(EXIT_SESSION_ENDED, message="The session ended (logged out or expired).")
        except LoginRefused as error:
            self.exit(EXIT_LOGIN, message=f"Login refused: {error}")

    async def action_quit(self) -> None:
        """Closes the socket and leaves."""
        await self.connection.stop()
        self.exit(0)

    def action_focus_list(self) -> None:
        """Moves the focus to the conversation list."""
        self.query_one("#conversations", OptionList).focus()

    # ---- what the person does ---------------------------------------------------------

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        """Sends the composer's text, or carries out its command."""
        event.input.value = ""
        command = parse_input(event.value)
        match command:
            case Send(body=body):
                await self.connection.say(body)
            case Join(conversation=conversation):
                await self.connection.join(conversation)
            case Who():
                await self.connection.who()
            case Rooms():
                self.connection.rooms()
            case Help():
                self._notice(HELP)
            case Quit():
                await self.action_quit()
            case Invalid(reason=reason):
                self._notice(error_line("command", reason))

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Opens the conversation picked in the list."""
        conversation = self.conversations.get(event.option.id or "")
        if conversation is not None and conversation != self.connection.current:
            await self.connection.join(conversation)
        self.query_one("#composer", Input).focus()

    # ---- what the connection reports ----------------------------------------------------

    def on_chat_event(self, event: Event) -> None:
        """Shows one event of the connection."""
        me = self.connection.state.me
        match event:
            case MessageEvent(message=message):
                conversation = conversation_of(message, me)
                if conversation is not None:
                    self._add_line(conversation, self._message_text(message, conversation))
            case StatusEvent(text=text, connected=connected):
                self.sub_title = f"{me or self.session.user} · {text}"
                if connected:
                    self._show_rooms()
                    self._show_online()
            case PresenceEvent(user=user, online=online):
                self._show_online()
                self._notice(presence_line(user, online))
            case OnlineEvent(users=users):
                self._show_online()
                self._notice(online_line(users))
            case RoomsEvent(rooms=rooms):
                self._show_rooms()
                self._notice(rooms_line(rooms))
            case JoinedEvent(conversation=conversation):
                self._open(conversation)
            case ErrorEvent(code=code, detail=detail):
                self._notice(error_line(code, detail))

    def _message_text(self, message: dict, conversation: Conversation) -> str:
        # The log shows one conversation: its label would only repeat the title.
        line = message_line(message, self.connection.state.me)
        text = line.removeprefix(conversation.label + " ")
        sent_at = message.get("sent_at")
        clock = sent_at[11:16] if isinstance(sent_at, str) and len(sent_at) >= 16 else "     "
        return f"{clock} {text}"

    def _add_line(self, conversation: Conversation, text: str) -> None:
        self.shown.setdefault(conversation, []).append(text)
        if conversation == self.connection.current:
            self.query_one("#log", Log).write_line(text)
        else:
            self.unread[conversation] = self.unread.get(conversation, 0) + 1
        self._show_conversations()

    def _open(self, conversation: Conversation) -> None:
        self.unread.pop(conversation, None)
        log = self.query_one("#log", Log)
        log.clear()
        log.write_lines(self.shown.get(conversation, []))
        self.query_one(
            "#composer", Input
        ).placeholder = f"Message {conversation.label}  (/help for commands)"
        self._show_conversations()

    def _notice(self, text: str) -> None:
        self.query_one("#notice", Static).update(clean(text))

    def _show_online(self) -> None:
        users = self.connection.state.online
        text = "\n".join(f"● {clean(user)}" for user in users) or "nobody"
        self.query_one("#online", Static).update(text)

    def _show_rooms(self) -> None:
        self._show_conversations()

    def _show_conversations(self) -> None:
        rooms = [Conversation("room", room) for room in self.connection.state.rooms]
        direct = [c for c in self.shown if c.kind == "dm"]
        current = self.connection.current
        if current.kind == "dm" and current not in direct:
            direct.append(current)
        self.conversations = {_key(c): c for c in [*rooms, *sorted(direct)]}
        options = self.query_one("#conversations", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        for key, conversation in self.conversations.items():
            unread = self.unread.get(conversation, 0)
            mark = "▸ " if conversation == current else "  "
            count = f" ({unread})" if unread else ""
            options.add_option(Option(f"{mark}{clean(conversation.label)}{count}", id=key))
        if highlighted is not None and highlighted < options.option_count:
            options.highlighted = highlighted


def run_tui(session: Session) -> int:
    """Logs in (on the terminal, before the screen is taken) and runs the full-screen app."""

    def show(event: Event) -> None:
        if isinstance(event, StatusEvent):
            print(f"chat: {event.text}", flush=True)

    asyncio.run(login_with_retry(session, show))
    app = ChatApp(session)
    app.run()
    return app.return_code or 0
