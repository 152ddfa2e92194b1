/* pjproject compile-time limits for the PBX engine.
 *
 * Upstream defaults suit a phone (4 calls, 8 accounts, 64 sockets); a PBX
 * engine bridges hundreds of legs in one process. See
 * shared/reference/pjsua2-notes.md for what breaks past each default.
 */
#ifndef PBX_PJ_CONFIG_SITE_H
#define PBX_PJ_CONFIG_SITE_H

/* Calls and accounts: every bridged call is two legs in the engine, and the
 * bench asks for 250+ bridged calls (Asterisk holds 500 on the same machine). */
#define PJSUA_MAX_CALLS              1024
#define PJSUA_MAX_ACC                128

/* Conference bridge: each leg, player and recorder is a port. */
#define PJSUA_MAX_CONF_PORTS         2560
#define PJSUA_MAX_PLAYERS            512
#define PJSUA_MAX_RECORDERS          512

/* Sockets: 2 RTP/RTCP sockets per leg plus SIP transports.  With epoll
 * this only sizes the table, it costs no select() scan. */
#define PJ_IOQUEUE_MAX_HANDLES       8192

/* No video, no sound card on an appliance. */
#define PJMEDIA_HAS_VIDEO            0
#define PJMEDIA_AUDIO_DEV_HAS_ALSA   0
#define PJMEDIA_AUDIO_DEV_HAS_PORTAUDIO 0
#define PJMEDIA_AUDIO_DEV_HAS_NULL_AUDIO 1

/* Transactions and dialogs: the engine talks only to the SIP edge, but
 * a busy office still has thousands of transactions in flight. */
#define PJSIP_MAX_TSX_COUNT          (16*1024-1)
#define PJSIP_MAX_DIALOG_COUNT       (16*1024-1)

/* Room for large INVITEs with many codecs and Record-Route sets. */
#define PJSIP_MAX_PKT_LEN            16384

/* Plain level-triggered epoll. One thread polls the ioqueue (the engine's owner thread), so
 * EPOLLEXCLUSIVE/ONESHOT buy nothing; with them, an outbound leg's RTP socket whose first
 * packets arrived before the stream started was sometimes never read again (its Recv-Q
 * filled up and the leg went silent in one direction). */
#define PJ_IOQUEUE_DEFAULT_EPOLL_FLAGS  0

#endif
