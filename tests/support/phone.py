"""A scriptable SIP phone for tests: pjsua2 in its own process.

Run as `python -m tests.support.phone --port P [--answer] [--record-dir D]
[--tone HZ] [--mwi]`; it prints one JSON object per line (events and replies) and
reads JSON commands on stdin:

  {"cmd": "call", "uri": "sip:200@127.0.0.1:5080", "tone": 700, "record": true}
  {"cmd": "hangup", "id": 3}     {"cmd": "hangup_all"}     {"cmd": "dtmf", "id": 3, "digits": "12#"}
  {"cmd": "answer", "id": 3}     {"cmd": "calls"}          {"cmd": "quit"}

With --answer-code 180 incoming calls keep ringing until an "answer" command.
With --mwi (and --registrar) the phone subscribes to its message-summary after
registering, as a desk phone's voicemail lamp does, and emits an "mwi" event
(subscription state and the NOTIFY's body) for every NOTIFY.

Each call that gets active media plays its tone (the call's own, or the
phone's --tone) and, when asked, records what it hears to <record-dir>/<port>-<id>.wav.
It follows the same one-owner-thread rule as the engine.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pjsua2 as pj

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}

# Subscription states as onMwiInfo reports them (the first NOTIFY arrives in ACCEPTED:
# pjsua reports it before the NOTIFY's Subscription-State moves the subscription on).
STATE_NAMES_EVSUB = {
    getattr(pj, f"PJSIP_EVSUB_STATE_{name}"): name
    for name in ("NULL", "SENT", "ACCEPTED", "PENDING", "ACTIVE", "TERMINATED")
}


def call_param() -> Any:
    """Call options: audio only (pjsua offers a real-time text stream by default)."""
    prm = pj.CallOpParam(True)
    prm.opt.textCount = 0
    prm.opt.videoCount = 0
    return prm


def emit(obj: dict[str, Any]) -> None:
    """One JSON line to stdout."""
    obj.setdefault("t", round(time.monotonic(), 3))
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Phone:
    """Owns the endpoint and every call; runs in the main thread."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.calls: dict[int, PhoneCall] = {}
        self.finished: list[int] = []
        self.next_id = 1
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 256
        cfg.logConfig.level = int(__import__("os").environ.get("PJLOG","1"))
        cfg.logConfig.consoleLevel = int(__import__("os").environ.get("PJLOG","1"))
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.maxMediaPorts = 1024
        self.ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = args.port
        tcfg.boundAddress = args.ip
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.ep.audDevManager().setNullDev()
        self.ep.libStart()
        for codec in self.ep.codecEnum2():
            prio = 0
            for rank, name in enumerate(args.codecs.split(",")):
                if codec.codecId.lower().startswith(name.lower()):
                    prio = 250 - rank
            self.ep.codecSetPriority(codec.codecId, prio)
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{args.user}@{args.ip}:{args.port}"
        if args.registrar:
            # A desk phone: register to the box with digest credentials.
            acfg.idUri = f"sip:{args.user}@{args.registrar}"
            acfg.regConfig.registrarUri = f"sip:{args.registrar}"
            acfg.regConfig.timeoutSec = args.expires
            cred = pj.AuthCredInfo("digest", "*", args.user, 0, args.password)
            acfg.sipConfig.authCreds.append(cred)
            acfg.mwiConfig.enabled = bool(args.mwi)
        acfg.mediaConfig.transportConfig.port = args.rtp_port
        acfg.mediaConfig.transportConfig.portRange = 2000
        acfg.mediaConfig.transportConfig.boundAddress = args.ip
        # No per-call IPv6 probe (it resolves the host name: a 5 s stall here).
        acfg.mediaConfig.ipv6Use = pj.PJSUA_IPV6_DISABLED
        self.account = PhoneAccount(self)
        self.account.create(acfg, True)
        self.commands: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.running = True

    def new_id(self) -> int:
        """A phone-local call number."""
        cid = self.next_id
        self.next_id += 1
        return cid

    def loop(self) -> None:
        """Poll pjsua2 and run commands until quit."""
        emit({"event": "ready", "port": self.args.port})
        while self.running:
            self.ep.libHandleEvents(10)
            while True:
                try:
                    cmd = self.commands.get_nowait()
                except queue.Empty:
                    break
                try:
                    self.handle(cmd)
                except Exception as exc:
                    emit({"reply": cmd.get("cmd"), "error": str(exc)})
            while self.finished:
                call = self.calls.pop(self.finished.pop(), None)
                if call is not None:
                    call.release_media()
        self.shutdown()

    def handle(self, cmd: dict[str, Any]) -> None:
        """Run one command from stdin."""
        name = cmd.get("cmd")
        if name == "call":
            call = PhoneCall(self, pj.PJSUA_INVALID_ID, tone=cmd.get("tone", self.args.tone),
                             record=bool(cmd.get("record", False)))
            self.calls[call.cid] = call
            call.makeCall(cmd["uri"], call_param())
            emit({"reply": "call", "id": call.cid})
        elif name == "hangup":
            call = self.calls.get(int(cmd["id"]))
            if call is not None:
                call.hangup(pj.CallOpParam(True))
            emit({"reply": "hangup", "id": cmd["id"]})
        elif name == "answer":  # a call left ringing by --answer-code 180
            op = call_param()
            op.statusCode = int(cmd.get("code", 200))
            self.calls[int(cmd["id"])].answer(op)
            emit({"reply": "answer", "id": cmd["id"]})
        elif name == "dtmf":
            self.calls[int(cmd["id"])].dialDtmf(str(cmd["digits"]))
            emit({"reply": "dtmf", "id": cmd["id"]})
        elif name == "hold":
            self.calls[int(cmd["id"])].setHold(pj.CallOpParam(True))
            emit({"reply": "hold", "id": cmd["id"]})
        elif name == "unhold":
            prm = pj.CallOpParam(True)
            prm.opt.flag = pj.PJSUA_CALL_UNHOLD
            self.calls[int(cmd["id"])].reinvite(prm)
            emit({"reply": "unhold", "id": cmd["id"]})
        elif name == "xfer":  # blind transfer of call id to uri
            self.calls[int(cmd["id"])].xfer(str(cmd["uri"]), pj.CallOpParam(True))
            emit({"reply": "xfer", "id": cmd["id"]})
        elif name == "xfer_replaces":  # attended: connect call id's party to call `to`'s
            self.calls[int(cmd["id"])].xferReplaces(self.calls[int(cmd["to"])],
                                                    pj.CallOpParam(True))
            emit({"reply": "xfer_replaces", "id": cmd["id"]})
        elif name == "stats":
            emit({"reply": "stats", "calls": {
                str(cid): c.media_stats() for cid, c in self.calls.items()}})
        elif name == "hangup_all":
            self.ep.hangupAllCalls()
            emit({"reply": "hangup_all"})
        elif name == "calls":
            emit({"reply": "calls", "calls": {
                str(cid): c.state_name() for cid, c in self.calls.items()}})
        elif name == "quit":
            self.running = False
        else:
            emit({"reply": name, "error": "unknown command"})

    def shutdown(self) -> None:
        """Hang up, drop every object in this thread, destroy the library."""
        self.ep.hangupAllCalls()
        for _ in range(50):
            self.ep.libHandleEvents(10)
        for call in self.calls.values():
            call.release_media()
        self.calls.clear()
        self.account.shutdown()
        self.ep.libDestroy()
        emit({"event": "bye"})


class PhoneAccount(pj.Account):  # type: ignore[misc]
    """Receives calls; answers them when the phone is told to."""

    def __init__(self, phone: Phone) -> None:
        super().__init__()
        self.phone = phone

    def onRegState(self, prm: Any) -> None:
        try:
            info = self.getInfo()
            emit({"event": "reg", "code": prm.code, "reason": prm.reason,
                  "active": bool(info.regIsActive), "expires": info.regExpiresSec})
        except Exception as exc:
            emit({"event": "error", "where": "onRegState", "error": str(exc)})

    def onMwiInfo(self, prm: Any) -> None:
        try:
            emit({"event": "mwi", "state": STATE_NAMES_EVSUB.get(prm.state, str(prm.state)),
                  "body": str(prm.rdata.wholeMsg).split("\r\n\r\n", 1)[-1]})
        except Exception as exc:
            emit({"event": "error", "where": "onMwiInfo", "error": str(exc)})

    def onIncomingCall(self, prm: Any) -> None:
        try:
            phone = self.phone
            call = PhoneCall(phone, prm.callId, tone=phone.args.tone,
                             record=phone.args.record_dir is not None)
            phone.calls[call.cid] = call
            emit({"event": "incoming", "id": call.cid, "remote": str(call.getInfo().remoteUri)})
            op = call_param()
            op.statusCode = phone.args.answer_code
            call.answer(op)
        except Exception as exc:
            emit({"event": "error", "where": "onIncomingCall", "error": str(exc)})


class PhoneCall(pj.Call):  # type: ignore[misc]
    """One call: plays a tone and optionally records what it hears."""

    def __init__(self, phone: Phone, call_id: int, *, tone: int, record: bool) -> None:
        super().__init__(phone.account, call_id)
        self.phone = phone
        self.cid = phone.new_id()
        self.tone = tone
        self.record = record
        self.tonegen: Any = None
        self.recorder: Any = None

    def state_name(self) -> str:
        """The invite state as text."""
        try:
            return STATE_NAMES.get(self.getInfo().state, "?")
        except pj.Error:
            return "DISCONNECTED"

    def onCallState(self, prm: Any) -> None:
        try:
            ci = self.getInfo()
            state = STATE_NAMES.get(ci.state, "?")
            emit({"event": "state", "id": self.cid, "state": state,
                  "code": ci.lastStatusCode, "reason": ci.lastReason})
            if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.phone.finished.append(self.cid)
        except Exception as exc:
            emit({"event": "error", "where": "onCallState", "error": str(exc)})

    def onCallMediaState(self, prm: Any) -> None:
        try:
            ci = self.getInfo()
            for index, media in enumerate(ci.media):
                if media.type != pj.PJMEDIA_TYPE_AUDIO:
                    continue
                if media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                    continue
                aud = self.getAudioMedia(index)
                if self.tone and self.tonegen is None:
                    self.tonegen = pj.ToneGenerator()
                    self.tonegen.createToneGenerator(8000, 1)
                    desc = pj.ToneDesc()
                    desc.freq1 = self.tone
                    desc.freq2 = 0
                    desc.on_msec = 1000
                    desc.off_msec = 0
                    desc.volume = 0
                    tones = pj.ToneDescVector()
                    tones.append(desc)
                    self.tonegen.play(tones, True)
                if self.tonegen is not None:
                    self.tonegen.startTransmit(aud)
                if self.record and self.recorder is None and self.phone.args.record_dir:
                    self.recorder = pj.AudioMediaRecorder()
                    name = f"{self.phone.args.port}-{self.cid}.wav"
                    path = Path(self.phone.args.record_dir) / name
                    self.recorder.createRecorder(str(path))
                if self.recorder is not None:
                    aud.startTransmit(self.recorder)
                emit({"event": "media", "id": self.cid, "active": True})
        except Exception as exc:
            emit({"event": "error", "where": "onCallMediaState", "error": str(exc)})

    def onCallTransferStatus(self, prm: Any) -> None:
        try:
            emit({"event": "xfer_status", "id": self.cid, "code": prm.statusCode,
                  "final": bool(prm.finalNotify)})
        except Exception as exc:
            emit({"event": "error", "where": "onCallTransferStatus", "error": str(exc)})

    def onDtmfDigit(self, prm: Any) -> None:
        try:
            emit({"event": "dtmf", "id": self.cid, "digit": str(prm.digit)})
        except Exception as exc:
            emit({"event": "error", "where": "onDtmfDigit", "error": str(exc)})

    def media_stats(self) -> dict[str, Any]:
        """RTP counters and bridge listeners of the call's audio (for failure reports)."""
        try:
            ci = self.getInfo()
            for index, media in enumerate(ci.media):
                if media.type == pj.PJMEDIA_TYPE_AUDIO and \
                        media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    port = self.getAudioMedia(index).getPortInfo()
                    rtcp = self.getStreamStat(index).rtcp
                    transport = self.getMedTransportInfo(index)
                    return {"slot": port.portId, "listeners": list(port.listeners),
                            "rx": rtcp.rxStat.pkt, "tx": rtcp.txStat.pkt,
                            "local": str(transport.localRtpName),
                            "remote": str(self.getStreamInfo(index).remoteRtpAddress),
                            "source": str(transport.srcRtpName),
                            "recorder": self.recorder is not None,
                            "tone": self.tonegen is not None}
            return {"media": "none"}
        except pj.Error as exc:
            return {"error": exc.info()}

    def release_media(self) -> None:
        """Drop the tone generator and close the recording (owner thread)."""
        self.tonegen = None
        self.recorder = None


def read_stdin(phone: Phone) -> None:
    """Feed stdin lines to the phone's command queue (never touches pjsua2)."""
    for line in sys.stdin:
        line = line.strip()
        if line:
            try:
                phone.commands.put(json.loads(line))
            except json.JSONDecodeError:
                emit({"event": "error", "error": "bad json"})
    phone.commands.put({"cmd": "quit"})


def main() -> None:
    """Parse arguments and run the phone until quit or end of stdin."""
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ip", default="127.0.0.1", help="loopback address to use (a 'host')")
    p.add_argument("--rtp-port", type=int, default=30000)
    p.add_argument("--user", default="phone")
    p.add_argument("--answer-code", type=int, default=200)
    p.add_argument("--tone", type=int, default=0)
    p.add_argument("--record-dir")
    p.add_argument("--codecs", default="PCMA,PCMU")
    p.add_argument("--registrar", help="host:port to register to (a desk phone)")
    p.add_argument("--password", default="")
    p.add_argument("--expires", type=int, default=300)
    p.add_argument("--mwi", action="store_true", help="subscribe to message-summary")
    args = p.parse_args()
    phone = Phone(args)
    # The stdin reader is a plain Python thread that never touches pjsua2
    # objects; it is still registered because gc may run in any thread.
    def reader() -> None:
        phone.ep.libRegisterThread("stdin")
        read_stdin(phone)

    threading.Thread(target=reader, daemon=True).start()
    phone.loop()


if __name__ == "__main__":
    main()
