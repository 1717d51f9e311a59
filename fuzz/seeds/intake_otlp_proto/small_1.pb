
!*GET /J
http.method
GET