//! The benchmark message, shared by the benchmark and the profiling example.

/// A customer INVITE as a class-4 switch receives it: 14 headers and an SDP body.
pub(crate) const INVITE: &str = "INVITE sip:34911234567@203.0.113.10:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-524287-1---7f3a9c2d1e;rport\r\n\
Max-Forwards: 70\r\n\
Route: <sip:203.0.113.10:5060;lr>\r\n\
From: \"912013022\" <sip:912013022@198.51.100.20:5060>;tag=8a7b6c5d\r\n\
To: <sip:34911234567@203.0.113.10:5060;user=phone>\r\n\
Call-ID: 1-12345@198.51.100.20\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:912013022@198.51.100.20:5060;transport=udp>\r\n\
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, UPDATE, INFO\r\n\
Supported: 100rel, timer, replaces\r\n\
Session-Expires: 1800;refresher=uac\r\n\
User-Agent: CustomerSBC/4.2.1 (build 20261001)\r\n\
P-Asserted-Identity: <sip:912013022@198.51.100.20>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 330\r\n\
\r\n\
v=0\r\n\
o=CustomerSBC 1732611234 1732611234 IN IP4 198.51.100.20\r\n\
s=SIP Call\r\n\
c=IN IP4 198.51.100.20\r\n\
t=0 0\r\n\
m=audio 16384 RTP/AVP 8 0 18 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=silenceSupp:off - - - -\r\n\
a=maxptime:40\r\n\
a=label:customer-leg-01\r\n";
