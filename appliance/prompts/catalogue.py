"""The built-in prompt set: every key the call flows may play, with its words in ru and en.

`make prompts` speaks these texts with espeak-ng into share/prompts/<language>/<key>.wav
(`generate.py`); an admin's recording with the same key replaces a built-in one.
Wording is neutral office speech: it must fit any company, so no names, no hours.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"


@dataclass(frozen=True)
class BuiltinPrompt:
    """One built-in prompt: spoken text per language, or a synthesised tone."""

    key: str
    ru: str
    en: str
    # A tone instead of speech: (frequency in Hz, seconds). The texts then only describe it.
    tone: tuple[float, float] | None = None

    def text(self, language: str) -> str:
        """The words of this prompt in a language (ru or en)."""
        return self.ru if language == "ru" else self.en


_DIGITS_RU = ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь",
              "девять")
_DIGITS_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

_SPEECH: tuple[BuiltinPrompt, ...] = (
    BuiltinPrompt(
        "welcome",
        "Здравствуйте! Вы позвонили в наш офис.",
        "Hello, you have reached our office."),
    BuiltinPrompt(
        "menu-default",
        "Наберите добавочный номер сотрудника или оставайтесь на линии, "
        "и вам ответит оператор.",
        "Please dial the extension number, or stay on the line for the operator."),
    BuiltinPrompt(
        "invalid-key",
        "Неверный выбор. Пожалуйста, попробуйте ещё раз.",
        "Sorry, that is not a valid choice. Please try again."),
    BuiltinPrompt(
        "no-such-extension",
        "Такого номера нет. Пожалуйста, проверьте номер и наберите его ещё раз.",
        "There is no such extension. Please check the number and dial it again."),
    BuiltinPrompt(
        "after-hours",
        "К сожалению, сейчас офис не работает. Пожалуйста, позвоните нам в рабочее время.",
        "Our office is closed at the moment. Please call us back during our working hours."),
    BuiltinPrompt(
        "holiday",
        "Сегодня праздничный день, и офис не работает. "
        "Пожалуйста, позвоните нам в рабочий день.",
        "Our office is closed today for the holiday. Please call us back on a working day."),
    BuiltinPrompt(
        "voicemail-greeting",
        "К сожалению, сейчас никто не может ответить на ваш звонок. "
        "Пожалуйста, оставьте сообщение после сигнала.",
        "Sorry, nobody can take your call right now. "
        "Please leave a message after the tone."),
    BuiltinPrompt(
        "voicemail-beep",
        "[сигнал: 1000 Гц, 400 мс]",
        "[tone: 1000 Hz, 400 ms]",
        tone=(1000.0, 0.4)),
    BuiltinPrompt(
        "voicemail-saved",
        "Ваше сообщение сохранено. Спасибо!",
        "Your message has been saved. Thank you."),
    BuiltinPrompt(
        "goodbye",
        "Спасибо за звонок. До свидания!",
        "Thank you for calling. Goodbye."),
    BuiltinPrompt(
        "all-busy",
        "Все сотрудники сейчас заняты. Пожалуйста, оставайтесь на линии "
        "или перезвоните позже.",
        "All our staff are busy at the moment. Please stay on the line, or call back later."),
    BuiltinPrompt(
        "please-hold",
        "Пожалуйста, оставайтесь на линии. Мы соединяем вас с сотрудником.",
        "Please hold the line while we connect your call."),
    BuiltinPrompt(
        "mobile-confirm",
        "Вам звонок из офиса. Чтобы принять вызов, нажмите один.",
        "This is a call from the office. To accept the call, press one."),
    BuiltinPrompt(
        "call-recorded",
        "Обратите внимание: разговор может быть записан.",
        "Please note that this call may be recorded."),
    BuiltinPrompt(
        "blocked",
        "К сожалению, мы не можем принять ваш звонок. До свидания.",
        "We are sorry, but we cannot take your call. Goodbye."),
    BuiltinPrompt(
        "not-available",
        "Абонент сейчас недоступен. Пожалуйста, перезвоните позже.",
        "The person you are calling is not available. Please call back later."),
    # The day/night switch from a phone (*31, *32, *30): mode-<the new mode>.
    BuiltinPrompt(
        "mode-day",
        "Включён дневной режим.",
        "Day mode is on."),
    BuiltinPrompt(
        "mode-night",
        "Включён ночной режим.",
        "Night mode is on."),
    BuiltinPrompt(
        "mode-auto",
        "Включён режим работы по расписанию.",
        "The office follows its schedule again."),
    # Listening to voicemail from a phone (feature code, the box number, then the PIN).
    BuiltinPrompt(
        "vm-enter-box",
        "Введите номер голосового ящика и нажмите решётку.",
        "Please enter the mailbox number, followed by the hash key."),
    BuiltinPrompt(
        "vm-enter-pin",
        "Введите пин-код голосового ящика и нажмите решётку.",
        "Please enter your voicemail PIN, followed by the hash key."),
    BuiltinPrompt(
        "vm-wrong-pin",
        "Неверный пин-код.",
        "That PIN is not correct."),
    BuiltinPrompt(
        "vm-no-messages",
        "У вас нет новых сообщений.",
        "You have no new messages."),
    BuiltinPrompt(
        "vm-new-messages",
        "У вас есть новые сообщения.",
        "You have new messages."),
    BuiltinPrompt(
        "vm-message",
        "Сообщение.",
        "Message."),
    BuiltinPrompt(
        "vm-options",
        "Чтобы прослушать сообщение ещё раз, нажмите один. "
        "Чтобы сохранить его и перейти к следующему, нажмите два. "
        "Чтобы удалить сообщение, нажмите семь. Чтобы выйти, нажмите решётку.",
        "To play the message again, press one. To save it and go to the next message, "
        "press two. To delete the message, press seven. To exit, press the hash key."),
    BuiltinPrompt(
        "vm-deleted",
        "Сообщение удалено.",
        "Message deleted."),
    BuiltinPrompt(
        "vm-no-more",
        "Больше сообщений нет.",
        "There are no more messages."),
    BuiltinPrompt(
        "vm-record-greeting",
        "Запишите приветствие после сигнала. Закончив, нажмите решётку.",
        "Record your greeting after the tone. When you have finished, press the hash key."),
    BuiltinPrompt(
        "vm-greeting-saved",
        "Приветствие сохранено.",
        "Your greeting has been saved."),
)
# Single digits, for reading out numbers (an extension, a count, a queue position).
CATALOGUE: tuple[BuiltinPrompt, ...] = (
    *_SPEECH,
    *(BuiltinPrompt(f"digit-{d}", _DIGITS_RU[d], _DIGITS_EN[d]) for d in range(10)),
)

BY_KEY: dict[str, BuiltinPrompt] = {p.key: p for p in CATALOGUE}
KEYS: tuple[str, ...] = tuple(BY_KEY)

# Older names of a built-in prompt (routing/mobile.py's CONFIRM_PROMPT was confirm-mobile).
ALIASES: dict[str, str] = {"confirm-mobile": "mobile-confirm"}
