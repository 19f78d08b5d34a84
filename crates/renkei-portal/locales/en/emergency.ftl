# Declared emergencies: the public pages, residents' notices, the console's steps.

nav-notices = Emergency notices
declarations-title = Declared emergencies
declarations-lead = In a disaster the city may declare an emergency: for a limited time, named responders may read named data without asking each resident. A second city officer must confirm it, it lasts at most 72 hours, and every use is recorded in the log.
declarations-active = In force now
declarations-none-active = No emergency is declared now.
declarations-past = Past declarations
declarations-none-past = None.
declarations-all = All declarations
declaration-state-pending = Awaiting confirmation
declaration-state-scheduled = Confirmed, not started yet
declaration-state-in-force = In force
declaration-state-ended = Ended
declaration-legal-basis = Legal basis
declaration-window = Period
declaration-ended-early = Ended early at
declaration-renewal-waiting = Extension awaiting confirmation, until
declaration-categories = Data released
declaration-services = Responders
declaration-area = Area (grid squares or districts)
declaration-id = Declaration number

home-emergency-title = An emergency is declared
home-emergency-help = During it, the responders named below may read the data named below without asking you. You will be told afterwards if yours was used.
home-notices = { $count ->
    [one] Your data was released under a declared emergency: see the notice.
   *[other] Your data was released under { $count } declared emergencies: see the notices.
  }
home-declarations-help = Emergencies the city declared, in force and past.

history-during-emergency = Used under your consent for a purpose that applies only during a declared emergency.
history-declaration-link = See the declaration
history-notice-link = See the notice

notices-title = Emergency notices
notices-lead = When an emergency the city declared is over, you are told here of every release of your data under it: what went to whom, and when. Each is also in your history.
notices-none = None of your data has been released under a declared emergency.
notice-heading = Released under the declared emergency “{ $reason }”
notice-summary = The declaration was in force from { $started } to { $ended }.
notice-releases = What was released
notice-release-to = to { $service }
notice-in-history = entry #{ $seq } in your history
notice-file-request = Make a request about this
notices-channels = Also tell me through a service
notices-channels-help = If you use one of these services, it can tell you of such notices too. It will learn which declaration, which responders and which data, but never the data itself.
notices-channels-none = No service offers this now.
notices-channel-on = Telling you
notices-channel-start = Tell me through this service
notices-channel-stop = Stop
notices-channel-saved = Your choice was saved.
request-about-declaration = About the release of my data under declared emergency { $id }:{" "}

console-declarations-title = Declared emergencies
nav-console-declarations = Emergencies
console-declarations-lead = A declaration releases nothing until a second, different officer confirms it. It lasts at most 72 hours; an extension needs the same two steps. Any officer can end it; the residents whose data was released are then told.
console-declarations-list = Declarations
console-declarations-none = No declaration yet.
console-declaration-step = { $operator }, { $at }
console-declaration-declared = Declared by
console-declaration-confirmed = Confirmed by
console-declaration-renewal-proposed = Extension proposed by
console-declaration-ended = Ended by
console-declaration-confirm = Confirm (second officer)
console-declaration-confirm-renewal = Confirm the extension
console-declaration-renew-until = Extend until
console-declaration-renew = Propose the extension
console-declaration-end = End now
console-declare = Declare an emergency
console-declare-help = Name the reason the public will read, the legal basis, the data released, the responders and the area. It takes effect when another officer confirms it.
console-declare-reason = Reason (published)
console-declare-area-hint = Grid-square codes (JIS X 0410, 4 to 11 digits) or district:<id>, separated by spaces.
console-declare-starts = Starts (Japan time; now if left empty)
console-declare-ends = Ends (Japan time)
console-declare-ends-hint = At most 72 hours after the start.
console-declare-button = Declare (awaiting confirmation)
console-declaration-bad-time = Enter the time as year, month, day, hour and minute.
console-declaration-done-declared = Declared. It takes effect when another officer confirms it.
console-declaration-done-confirmed = Confirmed: the declaration takes effect.
console-declaration-done-renewal = Extension proposed: another officer must confirm it.
console-declaration-done-renewed = Extension confirmed.
console-declaration-done-ended = Ended. The residents whose data was released are told.
declaration-refused-bad-reason = The reason must be 1 to 1000 characters.
declaration-refused-no-categories = Choose at least one data category.
declaration-refused-no-services = Choose at least one responder.
declaration-refused-end-not-after-start = The end must be after the start.
declaration-refused-too-long = A declaration lasts at most 72 hours.
declaration-refused-already-over = The end is already past.
declaration-refused-same-operator = The officer who took the first step cannot confirm it: another officer must.
declaration-refused-already-confirmed = It is confirmed already.
declaration-refused-not-confirmed = It is not confirmed yet.
declaration-refused-ended = It has ended.
declaration-refused-no-renewal = No extension awaits confirmation.
declaration-refused-renewal-pending = An extension already awaits confirmation.
declaration-refused-renewal-not-later = An extension must end later than the declaration does now.
declaration-refused-renewal-too-long = An extension ends at most 72 hours from now.
declaration-refused-changed-meanwhile = Someone else changed it meanwhile: look again.
declaration-refused-other = This step was refused.
