"""The IMAP poller: connection, folder operations, cursor and the drain of one mailbox."""
