# Shared texts of the portal and the console (English).
town-name = Hikaridai City
site-name = Data-linkage portal
console-name = Data-linkage console
skip-to-content = Skip to content
language = Language
main-menu = Main menu
sign-out = Sign out
sign-in-button = Sign in
footer-note = Your data is used only for the purposes you agreed to. Every use is recorded in a log that cannot be altered.
back-to-portal = Back to the portal
csrf-title = This could not be sent
csrf-body = For your safety this submission was not accepted. Please reload the page and try again.
special-care = Special-care data
list-sep = ,{" "}
retention-days = Kept by the service for { $days ->
    [one] { $days } day
   *[other] { $days } days
  }
col-service = Service
col-purpose = Purpose
col-state = State
col-granted = Agreed on
col-ended = Ended on
col-receipt = Receipt
col-counter = Taken at
col-id = ID
col-status = Status
col-purposes = Purposes
col-name-ja = Name (Japanese)
col-name-en = Name (English)
legal-basis-consent = Basis: your consent
legal-basis-law = Basis: law
legal-basis-vital-interest = Basis: protection of life or health
legal-basis-public-health = Basis: public health
basis-other = Basis: other
