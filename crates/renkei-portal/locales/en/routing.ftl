# Requests routed to whoever holds the data, their answers and deadlines (English).
request-category = Which kind of data is it about?
request-category-hint = Optional. With a kind of data, a correction, deletion or suspension goes to every service that received it and every provider that keeps it.
request-category-any = Any (as the service says)
request-service-any = Every service that received it
request-due = First answer due by
request-overdue = Overdue
request-extended = Due date extended because
request-recipients = Sent to those holding the data
recipient-kind-service = service
recipient-kind-provider = data provider
recipient-answer-pending = Not answered yet
recipient-answer-done = Done
recipient-answer-refused = Refused
recipient-answer-partly = Partly done
rights-routed-what = request routed to { $services } services and { $providers } providers
operator-action-extend-request = extended a resident request's due date
console-requests-summary = Deadlines
console-requests-answer-days = Days for a first answer
console-requests-days = { $count ->
    [one] one day
   *[other] { $count } days
}
console-requests-open-count = Waiting for an answer
console-requests-overdue-count = Past their due date
console-requests-extended-count = Due date extended
console-requests-overdue = { $count ->
    [one] One request is past its due date.
   *[other] { $count } requests are past their due date.
}
console-request-new-due = New due date
console-request-extension-reason = Reason for the extension (the resident reads it)
console-request-extend = Extend the due date
console-request-extended = The due date was extended; the resident sees the new date and the reason.
